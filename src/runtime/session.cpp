#include "bitnet/session.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "runtime/sampler.hpp"
#include "runtime/session_impl.hpp"

namespace bitnet {

namespace {

// The session's own pool, or the shared one when its size agrees with n_threads.
std::shared_ptr<ThreadPool> resolve_pool(const SessionParams& p) {
  if (!p.pool) return std::make_shared<ThreadPool>(p.n_threads);
  if (p.n_threads != 0 && p.n_threads != p.pool->n_threads())
    throw Error(ErrorKind::invalid_argument,
                fmt::format("{} threads asked for, but the shared pool has {}", p.n_threads,
                            p.pool->n_threads()));
  return p.pool;
}

int32_t resolve_ctx(const Model& model, int32_t requested) {
  if (requested < 0)
    throw Error(ErrorKind::invalid_argument, fmt::format("context size {} is negative", requested));
  if (requested > 0) return requested;
  const int32_t trained = model.info().n_ctx_train;
  if (trained <= kMaxDefaultCtx) return trained;
  spdlog::warn("the model's context length {} is above the default limit {}: using {} (ask for "
               "more with -c)",
               trained, kMaxDefaultCtx, kMaxDefaultCtx);
  return kMaxDefaultCtx;
}

} // namespace

std::vector<int32_t> micro_batches(int64_t n, int32_t n_batch, int32_t n_ubatch) {
  std::vector<int32_t> sizes;
  for (int64_t batch_begin = 0; batch_begin < n; batch_begin += n_batch) {
    const int64_t batch = std::min<int64_t>(n_batch, n - batch_begin);
    for (int64_t at = 0; at < batch; at += n_ubatch)
      sizes.push_back(static_cast<int32_t>(std::min<int64_t>(n_ubatch, batch - at)));
  }
  return sizes;
}

Session::Impl::Impl(std::shared_ptr<const Model> m, const SessionParams& p, int32_t ctx,
                    std::shared_ptr<ThreadPool> threads)
    : model(std::move(m)), params(p), n_ctx(ctx), pool(std::move(threads)),
      cache(detail::impl_of(*model).config, ctx, p.kv_type == KvType::f16),
      transformer(detail::impl_of(*model).config, detail::impl_of(*model).weights, kernels::table(),
                  p.n_ubatch, ctx, pool->n_threads()) {
  if (p.populate_kv) cache.populate();
  tokens.reserve(static_cast<size_t>(ctx));
  logits.resize(static_cast<size_t>(detail::impl_of(*model).config.n_vocab));
}

Session::Session(std::shared_ptr<const Model> model, const SessionParams& params) {
  if (!model) throw Error(ErrorKind::invalid_argument, "session needs a model");
  if (params.n_batch < 1 || params.n_ubatch < 1)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("batch sizes {} and {} must be >= 1", params.n_batch, params.n_ubatch));
  const int32_t ctx = resolve_ctx(*model, params.n_ctx);
  // As llama.cpp: the logical batch at most the context, the micro-batch at most the batch.
  SessionParams p = params;
  p.n_batch = std::min(params.n_batch, ctx);
  p.n_ubatch = std::min(params.n_ubatch, p.n_batch);
  impl_ = std::make_unique<Impl>(std::move(model), p, ctx, resolve_pool(params));
}

Session::~Session() = default;

const Model& Session::model() const {
  return *impl_->model;
}
int32_t Session::n_ctx() const {
  return impl_->n_ctx;
}
int32_t Session::n_batch() const {
  return impl_->params.n_batch;
}
int32_t Session::n_ubatch() const {
  return impl_->params.n_ubatch;
}
int32_t Session::n_threads() const {
  return impl_->pool->n_threads();
}
KvType Session::kv_type() const {
  return impl_->params.kv_type;
}
uint64_t Session::kv_bytes() const {
  return impl_->cache.bytes();
}
const std::shared_ptr<ThreadPool>& Session::pool() const {
  return impl_->pool;
}
double Session::decode_step_bytes(int64_t pos) const {
  return decode_step_bytes(pos, impl_->model->info().head_bytes);
}
double Session::decode_step_bytes(int64_t pos, uint64_t head_bytes) const {
  const ModelInfo& info = impl_->model->info();
  const double elt = kv_type() == KvType::f16 ? 2.0 : 4.0;
  const double kv_row = 2.0 * info.n_layer * info.n_head_kv * info.head_dim * elt;
  return static_cast<double>(info.weight_bytes_per_token - info.head_bytes + head_bytes) +
         kv_row * static_cast<double>(pos + 1);
}
int32_t Session::n_past() const {
  return static_cast<int32_t>(impl_->tokens.size());
}
std::span<const int32_t> Session::tokens() const {
  return impl_->tokens;
}
std::span<const float> Session::logits() const {
  return impl_->last_logits();
}

void Session::clear() {
  truncate(0);
}

void Session::truncate(int32_t n) {
  if (n < 0 || n > n_past())
    throw Error(ErrorKind::invalid_argument,
                fmt::format("cannot keep {} tokens of {} in the cache", n, n_past()));
  // Attention reads V up to the padded KV length (times a zero probability), so positions
  // the next evaluation can read that way must hold zeros again, as in a fresh cache. Only
  // those are zeroed (serve clears a slot per request; the whole cache would cost more).
  const int64_t used = n_past();
  impl_->cache.zero_v(n, (used + model::kKvPadding - 1) / model::kKvPadding * model::kKvPadding);
  impl_->tokens.resize(static_cast<size_t>(n));
  impl_->last = {};
  impl_->has_hidden = false;
}

void Session::Impl::check(std::span<const int32_t> ids) const {
  const auto n = static_cast<int64_t>(ids.size());
  const int64_t n_vocab = detail::impl_of(*model).config.n_vocab;
  const auto n_past = static_cast<int64_t>(tokens.size());
  if (n == 0) throw Error(ErrorKind::invalid_input, "nothing to evaluate (no tokens)");
  if (n > n_ctx - n_past)
    throw Error(
        ErrorKind::context_overflow,
        fmt::format("{} tokens do not fit: {} of {} context positions are used", n, n_past, n_ctx));
  for (int32_t id : ids)
    if (id < 0 || id >= n_vocab)
      throw Error(ErrorKind::invalid_input,
                  fmt::format("token id {} is outside the vocabulary [0, {})", id, n_vocab));
}

void Session::Impl::forward(std::span<const int32_t> ids, bool all_logits) {
  check(ids);
  const auto n = static_cast<int64_t>(ids.size());
  const int64_t n_vocab = detail::impl_of(*model).config.n_vocab;
  if (all_logits) logits.resize(static_cast<size_t>(n * n_vocab));
  last = {};
  has_hidden = false;

  auto& workers = detail::impl_of(*pool);
  int64_t begin = 0;
  for (const int64_t count : micro_batches(n, params.n_batch, params.n_ubatch)) {
    const auto chunk = ids.subspan(static_cast<size_t>(begin), static_cast<size_t>(count));
    const std::lock_guard turn(workers.turn);
    if (all_logits)
      transformer.forward(chunk, static_cast<int64_t>(tokens.size()), cache, workers.workers, true,
                          logits.data() + begin * n_vocab);
    else if (begin + count == n)
      transformer.forward_hidden(chunk, static_cast<int64_t>(tokens.size()), cache,
                                 workers.workers);
    else
      transformer.forward(chunk, static_cast<int64_t>(tokens.size()), cache, workers.workers, false,
                          nullptr);
    tokens.insert(tokens.end(), chunk.begin(), chunk.end());
    begin += count;
  }
  if (all_logits)
    last = std::span<const float>(logits.data() + (n - 1) * n_vocab, static_cast<size_t>(n_vocab));
  else
    has_hidden = true;
}

std::span<const float> Session::Impl::last_logits() {
  if (!last.empty() || !has_hidden) return last;
  const int64_t n_vocab = detail::impl_of(*model).config.n_vocab;
  logits.resize(static_cast<size_t>(n_vocab));
  auto& workers = detail::impl_of(*pool);
  const std::lock_guard turn(workers.turn);
  transformer.head().full(transformer.hidden().data(), 1, logits.data(), workers.workers);
  last = std::span<const float>(logits.data(), static_cast<size_t>(n_vocab));
  return last;
}

model::HeadTop& Session::Impl::head_top(int64_t m, bool screened,
                                        const model::BoundsAdjust& adjust) {
  if (!has_last()) throw Error(ErrorKind::invalid_input, "no evaluated token to compute logits of");
  if (screened && has_hidden && last.empty()) {
    auto& workers = detail::impl_of(*pool);
    const std::lock_guard turn(workers.turn);
    transformer.head().top(transformer.hidden().data(), m, true, adjust, workers.workers, top);
    return top;
  }
  const std::span<const float> all = last_logits();
  top.ids.resize(all.size());
  for (size_t i = 0; i < all.size(); ++i)
    top.ids[i] = static_cast<int32_t>(i);
  top.logits.assign(all.begin(), all.end());
  top.full = true;
  top.screen_read = false;
  return top;
}

void Session::append(std::span<const int32_t> tokens) {
  impl_->forward(tokens, false);
}

std::vector<TokenLogit> Session::top_logits(int32_t m, HeadMode head) const {
  if (m < 1)
    throw Error(ErrorKind::invalid_argument, fmt::format("top {} logits: m must be >= 1", m));
  Impl& s = *impl_;
  const int64_t n_vocab = detail::impl_of(*s.model).config.n_vocab;
  const int64_t n = std::min<int64_t>(m, n_vocab);
  // As a sampler step that needs the n largest: every row that can be among them, exactly.
  const model::HeadTop& top = s.head_top(n, head == HeadMode::screened && n < n_vocab, {});
  std::vector<TokenLogit> ranked(top.ids.size());
  for (size_t i = 0; i < ranked.size(); ++i)
    ranked[i] = {top.ids[i], top.logits[i]};
  std::partial_sort(ranked.begin(), ranked.begin() + n, ranked.end(), runtime::ranks_before);
  ranked.resize(static_cast<size_t>(n));
  return ranked;
}

void Session::shift(int32_t n_keep, int32_t n_discard) {
  Impl& s = *impl_;
  if (n_keep < 0 || n_discard < 1 || int64_t{n_keep} + n_discard > n_past())
    throw Error(ErrorKind::invalid_argument,
                fmt::format("cannot discard {} tokens after the first {} of {}", n_discard, n_keep,
                            n_past()));
  s.cache.shift(n_keep, n_discard, n_past(), detail::impl_of(*s.model).config);
  s.tokens.erase(s.tokens.begin() + n_keep, s.tokens.begin() + n_keep + n_discard);
}

std::span<const float> Session::evaluate(std::span<const int32_t> tokens, bool all_logits) {
  Impl& s = *impl_;
  s.forward(tokens, all_logits);
  return all_logits ? std::span<const float>(s.logits) : s.last_logits();
}

} // namespace bitnet
