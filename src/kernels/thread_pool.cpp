#include "kernels/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "bitnet/error.hpp"
#include "kernels/cpu_limits.hpp"

namespace bitnet::kernels {
namespace {

using Clock = std::chrono::steady_clock;

// Spin limits: long enough to bridge the serial gaps between the kernels of one forward pass
// and the sampling between tokens, short enough that an idle pool gives its CPU back quickly.
constexpr auto kMaxSpin = std::chrono::microseconds(200);
constexpr auto kMinSpin = std::chrono::microseconds(2);

// parallel_for: a share [begin, end) of chunk indices in one word (begin in the low half),
// claimed by compare-and-swap from either end; one cache line each.
constexpr int64_t kMaxChunks = int64_t{1} << 31;
struct alignas(64) Share {
  std::atomic<uint64_t> span;
};
constexpr uint64_t pack_span(uint64_t begin, uint64_t end) {
  return begin | end << 32;
}
constexpr uint64_t span_begin(uint64_t s) {
  return s & 0xffffffffu;
}
constexpr uint64_t span_end(uint64_t s) {
  return s >> 32;
}
constexpr uint64_t span_len(uint64_t s) {
  return span_end(s) > span_begin(s) ? span_end(s) - span_begin(s) : 0;
}
// Half of what is left, at least one chunk: big pieces while a share is long, single chunks
// at its end, where the threads meet. Each piece restarts a gemv's row streams (their
// prefetches stop at the piece's end), so fewer pieces stream faster: halves instead of
// quarters gave tg64 at 2 threads 1.085x (ab_bench 8 pairs, min 1.03), 1.09x with a CPU hog
// on the second core and 1.08x at depth 2048, with pp128 unchanged and the one-CPU
// oversubscription ratios no lower (2-vCPU Zen 5 VM, same runs).
constexpr uint64_t piece(uint64_t left) {
  return std::max<uint64_t>(1, left / 2);
}

// `state` of a region: the number of workers inside it, plus this bit once the caller has
// closed it (all indices claimed); a closed region admits no one.
constexpr uint32_t kClosed = 1u << 31;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

// Waits without blocking for a while. With a CPU per thread it spins (pause) for an adaptive
// time: a wait that ends within the budget lets it grow, one that runs out halves it, so an
// idle pool, or a busy host where the awaited thread is descheduled, soon stops burning a CPU
// that thread may need, while back-to-back regions keep spinning. A thread that then blocks
// reports how long the wait took (blocked_until_now): one the spin could have bridged sets
// the budget to cover it. Halving alone never recovered: once a few long gaps (loading, a
// prompt) had brought the budget below the gaps between a forward pass's kernels, every
// region woke a blocked worker, which on a 2-vCPU VM joined each region ~10-20 µs late.
// With more threads than CPUs it yields instead: the thread it waits for (or any other) runs
// at once, and a waiting thread costs no system call per region, since the thread posting
// work keeps claiming it.
class Spin {
public:
  explicit Spin(bool pause) : pause_(pause) {}

  // Waits until pred() holds or the spin is over; returns pred().
  template <class Pred> bool wait(Pred pred) {
    if (!pause_) {
      for (int i = 0; i < kYields; ++i) {
        if (pred()) return true;
        std::this_thread::yield();
      }
      return pred();
    }
    start_ = Clock::now();
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (pred()) {
          budget_ = std::min<Clock::duration>(kMaxSpin, budget_ + budget_ / 4);
          return true;
        }
        cpu_relax();
      }
      if (Clock::now() - start_ >= budget_) break;
    }
    budget_ = std::max<Clock::duration>(kMinSpin, budget_ / 2);
    return pred();
  }

  // After wait() returned false the caller blocked until the awaited event: a wait shorter
  // than kMaxSpin (counted from the spin's start) sets the budget to a quarter more than it.
  void blocked_until_now() {
    if (!pause_) return;
    const Clock::duration waited = Clock::now() - start_;
    if (waited < kMaxSpin)
      budget_ = std::clamp<Clock::duration>(waited + waited / 4, kMinSpin, kMaxSpin);
  }

private:
  // An idle CPU returns a yield in about a microsecond, so an idle pool blocks soon; a busy
  // one runs the other threads in between, so a waiting worker rarely blocks.
  static constexpr int kYields = 200;
  bool pause_;
  Clock::duration budget_ = kMaxSpin;
  Clock::time_point start_; // of the last spin
};

// Waits for pred() inside a job: as the pool's threads wait, then in turns with the others,
// since a thread still to finish its part may be waiting for this CPU.
template <class Pred> void wait_for(bool spins, Pred pred) {
  Spin spin(spins);
  while (!spin.wait(pred))
    std::this_thread::yield();
}

// The worker whose creation BITNET_FAIL_THREAD_CREATE asks to fail (0 = none).
int injected_failure() {
  const char* v = std::getenv("BITNET_FAIL_THREAD_CREATE");
  return v ? std::atoi(v) : 0;
}

} // namespace

struct ThreadPool::Impl {
  int n_threads = 1;
  bool spins = false;
  std::vector<std::thread> workers;

  const std::function<void(int, int)>* job = nullptr;
  std::atomic<int> next_index{0};       // next index of the current region to claim
  std::atomic<uint32_t> state{kClosed}; // workers inside the region | kClosed
  std::atomic<uint64_t> generation{0};  // bumped once per region (and at shutdown)
  std::atomic<bool> stopping{false};
  std::atomic<bool> busy{false};

  // Blocking: workers sleep on work_cv (counted in `sleepers`), the caller on done_cv.
  std::mutex mutex;
  std::condition_variable work_cv;
  std::condition_variable done_cv;
  std::atomic<int> sleepers{0};
  std::atomic<uint64_t> blocked{0}; // times a worker went to sleep on work_cv
  Spin caller_spin{true};

  std::mutex error_mutex;
  std::exception_ptr error;

  // Claims and runs indices until none is left.
  void claim_all() {
    for (int i = next_index.fetch_add(1, std::memory_order_relaxed); i < n_threads;
         i = next_index.fetch_add(1, std::memory_order_relaxed)) {
      try {
        (*job)(i, n_threads);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  }

  bool enter() {
    uint32_t s = state.load(std::memory_order_acquire);
    do {
      if (s & kClosed) return false;
    } while (!state.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel));
    return true;
  }

  void leave() {
    if (state.fetch_sub(1, std::memory_order_acq_rel) == (kClosed | 1)) {
      std::lock_guard lock(mutex); // the caller may be about to wait on done_cv
      done_cv.notify_one();
    }
  }

  void worker_loop() {
    Spin spin(spins);
    uint64_t seen = 0;
    for (;;) {
      const auto has_work = [&] { return generation.load(std::memory_order_seq_cst) != seen; };
      if (!spin.wait(has_work)) {
        std::unique_lock lock(mutex);
        sleepers.fetch_add(1, std::memory_order_seq_cst);
        // Counted only when no work is there under the lock, where wait() checks too: a
        // region that came after the spin ran out (the wait returns at once) is no sleep.
        if (!has_work()) blocked.fetch_add(1, std::memory_order_relaxed);
        work_cv.wait(lock, has_work);
        sleepers.fetch_sub(1, std::memory_order_relaxed);
        spin.blocked_until_now();
      }
      seen = generation.load(std::memory_order_acquire);
      if (stopping.load(std::memory_order_acquire)) return;
      if (!enter()) continue; // the caller already did everything
      claim_all();
      leave();
    }
  }

  void wake_workers() {
    generation.fetch_add(1, std::memory_order_seq_cst);
    // A worker counts itself in `sleepers` before its last look at `generation` (both
    // seq_cst), so either it sees the new generation or this sees it and wakes it.
    if (sleepers.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard lock(mutex);
      work_cv.notify_all();
    }
  }

  void stop() {
    stopping.store(true, std::memory_order_release);
    {
      std::lock_guard lock(mutex);
      generation.fetch_add(1, std::memory_order_seq_cst);
    }
    work_cv.notify_all();
    for (std::thread& t : workers)
      t.join();
    workers.clear();
  }
};

ThreadPool::ThreadPool(int n_threads) : impl_(std::make_unique<Impl>()) {
  if (n_threads < 1)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("thread count must be at least 1, got {}", n_threads));
  Impl& p = *impl_;
  p.n_threads = n_threads;
  p.spins = n_threads <= usable_cpus(cpu_limits());
  p.caller_spin = Spin(p.spins);
  p.workers.reserve(static_cast<size_t>(n_threads - 1));
  const int fail_at = injected_failure();
  for (int i = 1; i < n_threads; ++i) {
    try {
      if (i == fail_at) throw std::system_error(EAGAIN, std::generic_category());
      p.workers.emplace_back([&p] { p.worker_loop(); });
    } catch (const std::system_error& e) {
      p.stop(); // never leave running workers behind a half-built pool
      throw std::system_error(e.code(),
                              fmt::format("cannot create worker thread {} of {}", i, n_threads));
    } catch (...) {
      p.stop();
      throw;
    }
  }
}

ThreadPool::~ThreadPool() {
  impl_->stop();
}

int ThreadPool::size() const noexcept {
  return impl_->n_threads;
}

bool ThreadPool::spins() const noexcept {
  return impl_->spins;
}

uint64_t ThreadPool::blocked_waits() const noexcept {
  return impl_->blocked.load(std::memory_order_relaxed);
}

void ThreadPool::run(const std::function<void(int index, int n_threads)>& fn) {
  Impl& p = *impl_;
  if (p.busy.exchange(true, std::memory_order_acquire))
    throw Error(ErrorKind::invalid_argument, "ThreadPool::run called while the pool is busy");
  p.job = &fn;
  p.error = nullptr;
  p.next_index.store(0, std::memory_order_relaxed);
  if (p.n_threads > 1) {
    p.state.store(0, std::memory_order_release); // open: the job above is visible to entrants
    p.wake_workers();
  }
  p.claim_all();
  if (p.n_threads > 1) {
    // Close the region, then wait for the workers still running an index they claimed.
    const auto all_left = [&] { return p.state.load(std::memory_order_acquire) == kClosed; };
    if (p.state.fetch_or(kClosed, std::memory_order_acq_rel) != 0 &&
        !p.caller_spin.wait(all_left)) {
      std::unique_lock lock(p.mutex);
      p.done_cv.wait(lock, all_left);
      p.caller_spin.blocked_until_now();
    }
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
  int64_t chunks = (n + granule - 1) / granule;
  if (size() == 1 || chunks == 1) {
    fn(0, n);
    return;
  }
  if (chunks > kMaxChunks) { // a coarser multiple of the granule, so a share fits 32 bits
    granule *= (chunks + kMaxChunks - 1) / kMaxChunks;
    chunks = (n + granule - 1) / granule;
  }
  // One contiguous share of chunks per index, so each thread streams its own rows (and its
  // prefetches run ahead into rows it reads next). Each share is claimed from its front in
  // pieces of half of what is left; an index done with its own takes pieces the same
  // way from the end of the largest share left. So threads that run at different speeds
  // (or one descheduled on a busy host) end within a piece of one chunk or so of each other,
  // and only the piece a thread is inside waits for it. Which thread runs a range never
  // changes its result.
  const int n_shares = size();
  std::vector<Share> shares(static_cast<size_t>(n_shares));
  for (int i = 0; i < n_shares; ++i)
    shares[static_cast<size_t>(i)].span.store(
        pack_span(static_cast<uint64_t>(chunks * i / n_shares),
                  static_cast<uint64_t>(chunks * (i + 1) / n_shares)),
        std::memory_order_relaxed);
  const auto run_chunks = [&](uint64_t c0, uint64_t c1) {
    fn(static_cast<int64_t>(c0) * granule, std::min(n, static_cast<int64_t>(c1) * granule));
  };
  run([&](int index, int) {
    std::atomic<uint64_t>& own = shares[static_cast<size_t>(index)].span;
    for (uint64_t s = own.load(std::memory_order_relaxed); span_len(s) > 0;) {
      const uint64_t b = span_begin(s), e = span_end(s), take = piece(e - b);
      if (!own.compare_exchange_weak(s, pack_span(b + take, e), std::memory_order_relaxed))
        continue; // s now holds the share as a thief left it
      run_chunks(b, b + take);
      s = own.load(std::memory_order_relaxed);
    }
    for (;;) {
      Share* victim = nullptr;
      uint64_t most = 0;
      for (Share& other : shares)
        if (const uint64_t len = span_len(other.span.load(std::memory_order_relaxed)); len > most) {
          most = len;
          victim = &other;
        }
      if (!victim) return;
      uint64_t s = victim->span.load(std::memory_order_relaxed);
      const uint64_t b = span_begin(s), e = span_end(s);
      if (b >= e) continue;
      const uint64_t take = piece(e - b);
      if (victim->span.compare_exchange_weak(s, pack_span(b, e - take), std::memory_order_relaxed))
        run_chunks(e - take, e);
    }
  });
}

void Completion::wait() const {
  wait_for(spins_, [&] { return done_.load(std::memory_order_acquire) >= n_; });
}

} // namespace bitnet::kernels
