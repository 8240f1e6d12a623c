#include "model/kv_cache.hpp"

#include <limits>

#include <fmt/format.h>

namespace bitnet::model {

KvCache::KvCache(const Config& config, int64_t n_ctx, bool f16)
    : n_layer_(config.n_layer), n_ctx_(n_ctx), n_embd_kv_(config.n_embd_kv()), f16_(f16) {
  // Bounded so that 2 * n_layer * n_ctx * n_embd_kv * 4 bytes cannot overflow.
  constexpr int64_t kMaxCtx = int64_t{1} << 24;
  if (n_ctx < 1 || n_ctx > kMaxCtx)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("context size {} is outside [1, {}]", n_ctx, kMaxCtx));
  const auto n = static_cast<size_t>(n_layer_ * layer_elems());
  if (f16_) {
    k16_ = std::make_unique<uint16_t[]>(n);
    v16_ = std::make_unique<uint16_t[]>(n);
  } else {
    k32_ = std::make_unique<float[]>(n);
    v32_ = std::make_unique<float[]>(n);
  }
}

uint64_t KvCache::bytes() const {
  return 2 * static_cast<uint64_t>(n_layer_ * layer_elems()) * (f16_ ? 2 : 4);
}

} // namespace bitnet::model
