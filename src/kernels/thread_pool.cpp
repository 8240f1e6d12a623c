#include "kernels/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <fmt/format.h>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "bitnet/error.hpp"

namespace bitnet::kernels {
namespace {

// Long enough to bridge the short serial gaps between the kernels of one forward pass
// (norms, sampling), short enough that an idle pool gives its core back quickly.
constexpr auto kSpinTime = std::chrono::microseconds(200);

constexpr int kTasksPerThread = 4;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

// Spins until pred() holds or kSpinTime passes; returns pred().
template <class Pred> bool spin_until(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return pred();
  }
}

} // namespace

struct ThreadPool::Impl {
  int n_threads;
  std::vector<std::thread> workers;

  std::mutex mutex;
  std::condition_variable work_cv;
  std::condition_variable done_cv;
  std::atomic<uint64_t> generation{0}; // bumped once per run() (and at shutdown)
  std::atomic<int> pending{0};         // workers still running the current job
  std::atomic<bool> stopping{false};
  std::atomic<bool> busy{false};
  const std::function<void(int, int)>* job = nullptr;

  std::mutex error_mutex;
  std::exception_ptr error;

  void execute(int index) {
    try {
      (*job)(index, n_threads);
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  }

  void worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      const auto has_work = [&] { return generation.load(std::memory_order_acquire) != seen; };
      if (!spin_until(has_work)) {
        std::unique_lock lock(mutex);
        work_cv.wait(lock, has_work);
      }
      seen = generation.load(std::memory_order_acquire);
      if (stopping.load(std::memory_order_acquire)) return;
      execute(index);
      if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard lock(mutex);
        done_cv.notify_one();
      }
    }
  }

  void signal_workers() {
    {
      std::lock_guard lock(mutex);
      generation.fetch_add(1, std::memory_order_acq_rel);
    }
    work_cv.notify_all();
  }
};

ThreadPool::ThreadPool(int n_threads) : impl_(std::make_unique<Impl>()) {
  if (n_threads < 1)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("thread count must be at least 1, got {}", n_threads));
  impl_->n_threads = n_threads;
  impl_->workers.reserve(static_cast<size_t>(n_threads - 1));
  for (int i = 1; i < n_threads; ++i)
    impl_->workers.emplace_back([impl = impl_.get(), i] { impl->worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  impl_->stopping.store(true, std::memory_order_release);
  impl_->signal_workers();
  for (std::thread& t : impl_->workers)
    t.join();
}

int ThreadPool::size() const noexcept {
  return impl_->n_threads;
}

void ThreadPool::run(const std::function<void(int thread_index, int n_threads)>& fn) {
  Impl& p = *impl_;
  if (p.busy.exchange(true, std::memory_order_acquire))
    throw Error(ErrorKind::invalid_argument, "ThreadPool::run called while the pool is busy");
  p.job = &fn;
  p.error = nullptr;
  p.pending.store(p.n_threads - 1, std::memory_order_release);
  if (p.n_threads > 1) p.signal_workers();
  p.execute(0);
  const auto all_done = [&] { return p.pending.load(std::memory_order_acquire) == 0; };
  if (!spin_until(all_done)) {
    std::unique_lock lock(p.mutex);
    p.done_cv.wait(lock, all_done);
  }
  p.job = nullptr;
  std::exception_ptr error = std::exchange(p.error, nullptr);
  p.busy.store(false, std::memory_order_release);
  if (error) std::rethrow_exception(error);
}

void ThreadPool::parallel_for(int64_t n, int64_t granule,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  granule = std::max<int64_t>(granule, 1);
  const int64_t chunks = (n + granule - 1) / granule;
  if (size() == 1 || chunks == 1) {
    fn(0, n);
    return;
  }
  // A few contiguous tasks per thread, taken first come first served: on a shared host a
  // thread that is descheduled for a while then does less instead of holding up the rest.
  // Which thread runs a range never changes its result.
  const int64_t n_tasks = std::min<int64_t>(chunks, int64_t{kTasksPerThread} * size());
  std::atomic<int64_t> next{0};
  run([&](int, int) {
    for (int64_t task = next.fetch_add(1, std::memory_order_relaxed); task < n_tasks;
         task = next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t begin = chunks * task / n_tasks * granule;
      const int64_t end = std::min(n, chunks * (task + 1) / n_tasks * granule);
      fn(begin, end);
    }
  });
}

} // namespace bitnet::kernels
