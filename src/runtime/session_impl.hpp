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
  std::span<const float> last; // the last token's row of `logits` (empty until computed)
  bool has_hidden = false;     // transformer.hidden() belongs to the last token
  model::HeadTop top;          // the last head_top()

  // Forwards `tokens` (checked: ids in range, room in the context) in micro_batches() and
  // appends them to the cache. all_logits: every token's logits into `logits`; otherwise
  // only the last token's hidden state is kept, and its logits are computed on demand.
  void forward(std::span<const int32_t> tokens, bool all_logits);
  // forward()'s checks: Error(invalid_input) for no tokens or an id outside the vocabulary,
  // Error(context_overflow) when they do not fit.
  void check(std::span<const int32_t> tokens) const;
  bool has_last() const { return has_hidden || !last.empty(); }
  // The last token's full logits (the exact head, computed on first use; empty when none).
  std::span<const float> last_logits();
  // The exact logits of every row that can be among the m largest of the last token's, each
  // equal to last_logits()'s: screened when asked and the model has a screen, else all. The
  // result is scratch the caller may modify (the sampler's penalty) until the next call.
  model::HeadTop& head_top(int64_t m, bool screened, const model::BoundsAdjust& adjust);
};

} // namespace bitnet
