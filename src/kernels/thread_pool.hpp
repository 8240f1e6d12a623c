// A persistent worker pool. Every region's work items are claimed first come, first served,
// so whichever threads are actually running do the work: a descheduled worker (a busy host,
// more threads than CPUs) delays nothing, and results never depend on which thread ran what.
// Waiting threads spin only while the pool has a CPU per thread, for an adaptive time, then
// block; in a pool larger than the usable CPUs they yield instead of spinning.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

namespace bitnet::kernels {

class ThreadPool {
public:
  // n_threads >= 1 (the caller counts as one). Throws std::system_error naming the thread
  // when a worker cannot be created (the workers already started are stopped first).
  // Test seam: BITNET_FAIL_THREAD_CREATE=N makes the creation of worker N (1-based) fail.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const noexcept;
  // Whether waiting threads spin (size() <= the CPUs this process may use) or yield.
  bool spins() const noexcept;
  // How many times, so far, a worker found no work within its spin and went to sleep (each
  // costs a wake-up, ~10-20 µs on a VM, when the next region starts).
  uint64_t blocked_waits() const noexcept;
  // Runs fn(index, n_threads) once for every index in [0, n_threads); returns when all are
  // done. The caller takes part; an index may run on any thread, so per-index scratch must
  // be indexed by `index`. The first exception thrown is rethrown here.
  void run(const std::function<void(int index, int n_threads)>& fn);
  // Runs fn(begin, end) over contiguous ranges aligned to `granule` that cover [0, n) once:
  // each thread works through its own contiguous share first, then helps with the others'.
  void parallel_for(int64_t n, int64_t granule, const std::function<void(int64_t, int64_t)>& fn);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Counts the finished work items of one phase whose items any thread may claim: wait() returns
// once all n are done, whichever threads did them (arrive(k): k more items done). It waits for no
// thread that holds no item, so one that has not started yet (descheduled on a busy host) holds
// nobody up. A waiter spins while the pool has a CPU per thread, for the pool's adaptive time, then
// yields in turns with the others; in a pool larger than the usable CPUs it yields at once. `spins`
// as the pool's spins().
class Completion {
public:
  Completion(int64_t n, bool spins) : n_(n), spins_(spins) {}
  void arrive(int64_t k = 1) { done_.fetch_add(k, std::memory_order_release); }
  void wait() const;

private:
  const int64_t n_;
  const bool spins_;
  std::atomic<int64_t> done_{0};
};

} // namespace bitnet::kernels
