// Session::Impl: the KV cache, thread pool and forward scratch of one sequence; and the
// public ThreadPool's state.
#pragma once

#include <mutex>
#include <vector>

#include "bitnet/session.hpp"
#include "kernels/thread_pool.hpp"
#include "model/forward.hpp"
#include "model/kv_cache.hpp"
#include "model/model_impl.hpp"
#include "util/access.hpp"

namespace bitnet {

struct ThreadPool::Impl {
  explicit Impl(int n_threads) : workers(n_threads) {}
  kernels::ThreadPool workers;
  std::mutex turn; // held for each forward: sessions sharing the pool take turns
};

struct Session::Impl {
  Impl(std::shared_ptr<const Model> m, const SessionParams& p, int32_t ctx,
       std::shared_ptr<ThreadPool> threads);

  std::shared_ptr<const Model> model;
  SessionParams params;
  int32_t n_ctx;
  std::shared_ptr<ThreadPool> pool;
  model::KvCache cache;
  model::Transformer transformer;
  std::vector<int32_t> tokens; // [n_past] tokens in the cache
  std::vector<float> logits;   // [n_vocab] last token, or [n × n_vocab] after all_logits
  std::span<const float> last; // the last token's row of `logits` (empty when none)
};

} // namespace bitnet
