// Session::Impl: the KV cache, thread pool and forward scratch of one sequence.
#pragma once

#include <vector>

#include "bitnet/session.hpp"
#include "kernels/thread_pool.hpp"
#include "model/forward.hpp"
#include "model/kv_cache.hpp"
#include "model/model_impl.hpp"

namespace bitnet {

struct Session::Impl {
  Impl(std::shared_ptr<const Model> m, const SessionParams& p, int32_t ctx, int threads);

  std::shared_ptr<const Model> model;
  SessionParams params;
  int32_t n_ctx;
  int n_threads;
  model::KvCache cache;
  kernels::ThreadPool pool;
  model::Transformer transformer;
  std::vector<int32_t> tokens; // [n_past] tokens in the cache
  std::vector<float> logits;   // [n_vocab] last token, or [n × n_vocab] after all_logits
  std::span<const float> last; // the last token's row of `logits` (empty when none)
};

} // namespace bitnet
