#include "model/kv_cache.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "kernels/cpu_limits.hpp"
#include "kernels/kernels.hpp"
#include "util/fp16.hpp"

namespace bitnet::model {

namespace {

// Bounded so that 2 * n_layer * n_ctx * n_embd_kv * 4 bytes cannot overflow (with n_ctx
// rounded up to kKvPadding).
constexpr int64_t kMaxCtx = int64_t{1} << 24;

double gib(uint64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0);
}

int64_t v_stride_of(int64_t n_ctx) {
  return (n_ctx + kKvPadding - 1) / kKvPadding * kKvPadding;
}

// Bytes of one of K and V: n_positions values of every KV dimension in every layer.
uint64_t side_bytes(int64_t n_layer, int64_t n_positions, int64_t n_embd_kv, bool f16) {
  return static_cast<uint64_t>(n_layer * n_positions * n_embd_kv) * (f16 ? 2 : 4);
}

// K's n_ctx rows and V's rows of v_stride_of(n_ctx).
uint64_t cache_bytes(int64_t n_layer, int64_t n_ctx, int64_t n_embd_kv, bool f16) {
  return side_bytes(n_layer, n_ctx, n_embd_kv, f16) +
         side_bytes(n_layer, v_stride_of(n_ctx), n_embd_kv, f16);
}

} // namespace

uint64_t KvCache::bytes_for(const Config& config, int64_t n_ctx, bool f16) {
  return cache_bytes(config.n_layer, n_ctx, config.n_embd_kv(), f16);
}

KvCache::KvCache(const Config& config, int64_t n_ctx, bool f16)
    : n_layer_(config.n_layer), n_ctx_(n_ctx), v_stride_(v_stride_of(n_ctx)),
      n_embd_kv_(config.n_embd_kv()), f16_(f16) {
  if (n_ctx < 1 || n_ctx > kMaxCtx)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("context size {} is outside [1, {}]", n_ctx, kMaxCtx));
  const uint64_t total = bytes_for(config, n_ctx, f16);
  const uint64_t limit = kernels::memory_limit();
  if (total > limit)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("a context of {} positions needs a {:.1f} GiB KV cache, more than the "
                            "{:.1f} GiB of memory this process may use; use a smaller context "
                            "size (-c)",
                            n_ctx, gib(total), gib(limit)));
  k_ = ZeroedPages(side_bytes(n_layer_, n_ctx_, n_embd_kv_, f16));
  v_ = ZeroedPages(side_bytes(n_layer_, v_stride_, n_embd_kv_, f16));
}

void KvCache::shift(int64_t n_keep, int64_t n_discard, int64_t n_past, const Config& config) {
  const int64_t n_move = n_past - n_keep - n_discard;
  const int64_t e = n_embd_kv_;
  // The angles of position -n_discard: rotating by them subtracts n_discard from every
  // position, as ggml_rope_ext with pos = -n_discard does in llama's K shift.
  std::vector<float> cs(static_cast<size_t>(config.n_rot));
  kernels::rope_cos_sin(-n_discard, config.n_rot, config.rope_base, cs.data());
  const kernels::Table& kt = kernels::table();
  const auto rotate = [&](float* row) {
    kt.rope(row, config.n_head_kv, config.head_dim, config.n_rot, cs.data(), config.rope_neox);
  };
  std::vector<float> row(static_cast<size_t>(e));
  for (int64_t il = 0; il < n_layer_; ++il) {
    for (int64_t p = 0; p < n_move; ++p) {
      const int64_t from = (n_keep + n_discard + p) * e, to = (n_keep + p) * e;
      if (f16_) {
        const uint16_t* src = k16(il) + from;
        for (int64_t i = 0; i < e; ++i)
          row[static_cast<size_t>(i)] = fp16_to_fp32(src[i]);
        rotate(row.data());
        uint16_t* dst = k16(il) + to;
        for (int64_t i = 0; i < e; ++i)
          dst[i] = fp32_to_fp16(row[static_cast<size_t>(i)]);
      } else {
        std::memmove(k32(il) + to, k32(il) + from, static_cast<size_t>(e) * sizeof(float));
        rotate(k32(il) + to);
      }
    }
    // V is transposed: each of its n_embd_kv rows holds one value per position.
    const size_t elt = f16_ ? 2 : 4;
    auto* v = static_cast<uint8_t*>(v_.data()) + static_cast<size_t>(il * v_layer_elems()) * elt;
    for (int64_t d = 0; d < e; ++d) {
      uint8_t* vrow = v + static_cast<size_t>(d * v_stride_) * elt;
      std::memmove(vrow + n_keep * elt, vrow + (n_keep + n_discard) * elt,
                   static_cast<size_t>(n_move) * elt);
    }
  }
  zero_v(n_keep + n_move, n_past);
}

uint64_t KvCache::bytes() const {
  return cache_bytes(n_layer_, n_ctx_, n_embd_kv_, f16_);
}

void KvCache::zero_v(int64_t begin, int64_t end) {
  begin = std::max<int64_t>(begin, 0);
  end = std::min(end, n_ctx_);
  if (begin >= end) return;
  const size_t elt = f16_ ? 2 : 4;
  auto* v = static_cast<uint8_t*>(v_.data());
  for (int64_t row = 0; row < n_layer_ * n_embd_kv_; ++row)
    std::memset(v + (static_cast<size_t>(row * v_stride_ + begin)) * elt, 0,
                static_cast<size_t>(end - begin) * elt);
}

} // namespace bitnet::model
