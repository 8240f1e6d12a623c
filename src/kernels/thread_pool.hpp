// A persistent worker pool: workers spin briefly for new work, then block, so an idle
// pool does not steal the other core. Work is split by output rows; results never depend
// on the thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace bitnet::kernels {

class ThreadPool {
public:
  explicit ThreadPool(int n_threads); // n_threads >= 1 (the caller counts as one)
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const noexcept;
  // Runs fn(thread_index, n_threads) on every thread (the caller is index 0); returns
  // when all are done. The first exception thrown is rethrown here.
  void run(const std::function<void(int thread_index, int n_threads)>& fn);
  // Splits [0, n) into contiguous ranges aligned to `granule` and runs fn(begin, end).
  void parallel_for(int64_t n, int64_t granule, const std::function<void(int64_t, int64_t)>& fn);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace bitnet::kernels
