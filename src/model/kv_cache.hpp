// Per-layer K and V for one sequence. K rows are [pos][n_embd_kv]; V is stored transposed,
// [n_embd_kv][n_ctx], as ggml does, so that both attention products are contiguous dots.
#pragma once

#include <cstdint>
#include <memory>

#include "model/config.hpp"

namespace bitnet::model {

class KvCache {
public:
  // Throws Error(invalid_argument) when n_ctx < 1 or the cache size overflows.
  KvCache(const Config& config, int64_t n_ctx, bool f16);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_embd_kv() const { return n_embd_kv_; }
  bool is_f16() const { return f16_; }
  uint64_t bytes() const;

  // Layer il's K (n_ctx rows of n_embd_kv) and transposed V (n_embd_kv rows of n_ctx).
  // Exactly one of the f16 / f32 families is allocated, per is_f16().
  uint16_t* k16(int64_t il) { return k16_.get() + il * layer_elems(); }
  uint16_t* v16(int64_t il) { return v16_.get() + il * layer_elems(); }
  float* k32(int64_t il) { return k32_.get() + il * layer_elems(); }
  float* v32(int64_t il) { return v32_.get() + il * layer_elems(); }

private:
  int64_t layer_elems() const { return n_ctx_ * n_embd_kv_; }
  int64_t n_layer_;
  int64_t n_ctx_;
  int64_t n_embd_kv_;
  bool f16_;
  // Zero-initialised: attention reads V up to the padded length (times zero probability).
  std::unique_ptr<uint16_t[]> k16_, v16_;
  std::unique_ptr<float[]> k32_, v32_;
};

} // namespace bitnet::model
