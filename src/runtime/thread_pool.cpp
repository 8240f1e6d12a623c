// The public ThreadPool: the kernels' worker pool, shareable between sessions.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "kernels/cpu_limits.hpp"
#include "runtime/session_impl.hpp"

namespace bitnet {

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

} // namespace

int32_t default_threads() {
  return kernels::default_thread_count(kernels::cpu_limits());
}

ThreadPool::ThreadPool(int32_t n_threads)
    : impl_(std::make_unique<Impl>(resolve_threads(n_threads))) {}
ThreadPool::~ThreadPool() = default;

int32_t ThreadPool::n_threads() const {
  return impl_->workers.size();
}

} // namespace bitnet
