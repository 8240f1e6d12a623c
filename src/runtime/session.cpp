#include "bitnet/session.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "kernels/cpu_limits.hpp"
#include "runtime/session_impl.hpp"

namespace bitnet {

int32_t default_threads() {
  return kernels::default_thread_count(kernels::cpu_limits());
}

namespace {

int resolve_threads(int32_t requested) {
  if (requested < 0 || requested > kMaxThreads)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("thread count {} is outside [0, {}]", requested, kMaxThreads));
  const kernels::CpuLimits& limits = kernels::cpu_limits();
  std::string bound;
  const int fallback = kernels::default_thread_count(limits, &bound);
  const int threads = requested > 0 ? requested : fallback;
  spdlog::debug("threads: {} ({}; the default is {}, set by {}{})", threads,
                requested > 0 ? "asked for" : "the default", fallback, bound,
                limits.quota_cpus > 0 ? "" : "; no cgroup cpu.max quota");
  const int usable = kernels::usable_cpus(limits);
  if (threads > usable)
    spdlog::warn("{} threads on {} usable CPU{}: the extra threads wait for a CPU instead of "
                 "spinning (the default here is {})",
                 threads, usable, usable == 1 ? "" : "s", fallback);
  return threads;
}

int32_t resolve_ctx(const Model& model, int32_t requested) {
  if (requested < 0)
    throw Error(ErrorKind::invalid_argument, fmt::format("context size {} is negative", requested));
  return requested == 0 ? model.info().n_ctx_train : requested;
}

} // namespace

Session::Impl::Impl(std::shared_ptr<const Model> m, const SessionParams& p, int32_t ctx,
                    int threads)
    : model(std::move(m)), params(p), n_ctx(ctx), n_threads(threads),
      cache(detail::impl_of(*model).config, ctx, p.kv_type == KvType::f16), pool(threads),
      transformer(detail::impl_of(*model).config, detail::impl_of(*model).weights, kernels::table(),
                  std::min(p.n_batch, ctx), ctx, threads) {
  tokens.reserve(static_cast<size_t>(ctx));
  logits.resize(static_cast<size_t>(detail::impl_of(*model).config.n_vocab));
}

Session::Session(std::shared_ptr<const Model> model, const SessionParams& params) {
  if (!model) throw Error(ErrorKind::invalid_argument, "session needs a model");
  if (params.n_batch < 1)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("batch size {} must be >= 1", params.n_batch));
  const int32_t ctx = resolve_ctx(*model, params.n_ctx);
  const int threads = resolve_threads(params.n_threads);
  impl_ = std::make_unique<Impl>(std::move(model), params, ctx, threads);
}

Session::~Session() = default;

const Model& Session::model() const {
  return *impl_->model;
}
int32_t Session::n_ctx() const {
  return impl_->n_ctx;
}
int32_t Session::n_batch() const {
  return static_cast<int32_t>(impl_->transformer.n_batch());
}
int32_t Session::n_threads() const {
  return impl_->n_threads;
}
KvType Session::kv_type() const {
  return impl_->params.kv_type;
}
uint64_t Session::kv_bytes() const {
  return impl_->cache.bytes();
}
int32_t Session::n_past() const {
  return static_cast<int32_t>(impl_->tokens.size());
}
std::span<const int32_t> Session::tokens() const {
  return impl_->tokens;
}
std::span<const float> Session::logits() const {
  return impl_->last;
}

void Session::clear() {
  truncate(0);
}

void Session::truncate(int32_t n) {
  if (n < 0 || n > n_past())
    throw Error(ErrorKind::invalid_argument,
                fmt::format("cannot keep {} tokens of {} in the cache", n, n_past()));
  impl_->tokens.resize(static_cast<size_t>(n));
  impl_->last = {};
}

std::span<const float> Session::evaluate(std::span<const int32_t> tokens, bool all_logits) {
  Impl& s = *impl_;
  const auto n = static_cast<int64_t>(tokens.size());
  const int64_t n_vocab = detail::impl_of(*s.model).config.n_vocab;
  if (n == 0) throw Error(ErrorKind::invalid_input, "nothing to evaluate (no tokens)");
  if (n > s.n_ctx - n_past())
    throw Error(ErrorKind::context_overflow,
                fmt::format("{} tokens do not fit: {} of {} context positions are used", n,
                            n_past(), s.n_ctx));
  for (int32_t id : tokens)
    if (id < 0 || id >= n_vocab)
      throw Error(ErrorKind::invalid_input,
                  fmt::format("token id {} is outside the vocabulary [0, {})", id, n_vocab));
  if (all_logits) s.logits.resize(static_cast<size_t>(n * n_vocab));
  s.last = {};

  const int64_t batch = s.transformer.n_batch();
  for (int64_t begin = 0; begin < n; begin += batch) {
    const int64_t count = std::min(batch, n - begin);
    const bool last_chunk = begin + count == n;
    float* out =
        all_logits ? s.logits.data() + begin * n_vocab : (last_chunk ? s.logits.data() : nullptr);
    s.transformer.forward(tokens.subspan(static_cast<size_t>(begin), static_cast<size_t>(count)),
                          n_past(), s.cache, s.pool, all_logits, out);
    s.tokens.insert(s.tokens.end(), tokens.begin() + begin, tokens.begin() + begin + count);
  }
  const int64_t rows = all_logits ? n : 1;
  s.last =
      std::span<const float>(s.logits.data() + (rows - 1) * n_vocab, static_cast<size_t>(n_vocab));
  return std::span<const float>(s.logits.data(), static_cast<size_t>(rows * n_vocab));
}

} // namespace bitnet
