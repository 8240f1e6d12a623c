// Per-layer K and V for one sequence. K rows are [pos][n_embd_kv]; V is stored transposed,
// [n_embd_kv][v_stride()], as ggml does, so that both attention products are contiguous dots.
#pragma once

#include <cstdint>

#include "model/config.hpp"
#include "util/pages.hpp"

namespace bitnet::model {

// Attention reads V over the KV length rounded up to this many positions, as llama.cpp pads
// n_kv; the padding positions are multiplied by a zero probability, so they must be finite.
inline constexpr int64_t kKvPadding = 32;

class KvCache {
public:
  // Bytes of a cache of n_ctx positions, without allocating it.
  static uint64_t bytes_for(const Config& config, int64_t n_ctx, bool f16);

  // Throws Error(invalid_argument) when n_ctx is outside [1, 2^24] or the cache would not fit
  // in the memory this process may use (checked before allocating). The cache starts zeroed
  // (ZeroedPages: an unused tail costs no memory).
  KvCache(const Config& config, int64_t n_ctx, bool f16);

  int64_t n_ctx() const { return n_ctx_; }
  // Elements from one V row to the next: n_ctx rounded up to kKvPadding, so that every row
  // starts on a 64-byte line as ggml's padded cache does. With rows of n_ctx (a bench at depth
  // 2048 has 2081) the dots' 32-byte loads of most rows straddle two lines: V·p of a layer
  // over 2048 positions, 1 thread, throwaway harness, 3 alternations: 191-200 µs against
  // 152-157 from memory, 35 against 28 from cache.
  int64_t v_stride() const { return v_stride_; }
  int64_t n_embd_kv() const { return n_embd_kv_; }
  bool is_f16() const { return f16_; }
  uint64_t bytes() const;
  // Backs the whole cache now (ZeroedPages::populate), so that no later step pays its faults.
  void populate() {
    k_.populate();
    v_.populate();
  }

  // llama-cli's context shift on positions [0, n_past): drops [n_keep, n_keep + n_discard),
  // moves the rows after it down by n_discard and rotates their K by -n_discard as ggml_rope
  // does on a K cache of this type (f16 → f32, rotate, round to f16; f32 in place), as
  // llama_kv_cache_seq_add leads to. The V entries freed at the end are zeroed (attention
  // reads V up to the padded length and relies on zeros there).
  void shift(int64_t n_keep, int64_t n_discard, int64_t n_past, const Config& config);

  // Layer il's K (n_ctx rows of n_embd_kv) and transposed V (n_embd_kv rows of v_stride(),
  // the positions past n_ctx unused).
  // Exactly one of the f16 / f32 families is allocated, per is_f16().
  uint16_t* k16(int64_t il) { return static_cast<uint16_t*>(k_.data()) + il * layer_elems(); }
  uint16_t* v16(int64_t il) { return static_cast<uint16_t*>(v_.data()) + il * v_layer_elems(); }
  float* k32(int64_t il) { return static_cast<float*>(k_.data()) + il * layer_elems(); }
  float* v32(int64_t il) { return static_cast<float*>(v_.data()) + il * v_layer_elems(); }

  // Zeroes V at positions [begin, end) of every layer, so that a padded attention read there
  // sees zeros again (after Session::clear(), or when a context shift frees positions).
  void zero_v(int64_t begin, int64_t end);

private:
  int64_t layer_elems() const { return n_ctx_ * n_embd_kv_; }
  int64_t v_layer_elems() const { return v_stride_ * n_embd_kv_; }
  int64_t n_layer_;
  int64_t n_ctx_;
  int64_t v_stride_;
  int64_t n_embd_kv_;
  bool f16_;
  ZeroedPages k_, v_;
};

} // namespace bitnet::model
