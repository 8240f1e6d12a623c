#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "bitnet/error.hpp"
#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"

namespace bitnet::kernels {
namespace {

TEST(ThreadPool, RunCallsEveryThreadIndexOnce) {
  for (int n : {1, 2, 3, 5}) {
    ThreadPool pool(n);
    EXPECT_EQ(pool.size(), n);
    for (int rep = 0; rep < 50; ++rep) {
      std::mutex m;
      std::multiset<int> seen;
      pool.run([&](int index, int n_threads) {
        EXPECT_EQ(n_threads, n);
        std::lock_guard lock(m);
        seen.insert(index);
      });
      ASSERT_EQ(seen.size(), static_cast<size_t>(n));
      for (int i = 0; i < n; ++i)
        EXPECT_EQ(seen.count(i), 1u) << "index " << i;
    }
  }
}

TEST(ThreadPool, ParallelForCoversEveryIndexOnceInAlignedRanges) {
  for (int n_threads : {1, 2, 3}) {
    ThreadPool pool(n_threads);
    for (int64_t n : {0, 1, 7, 64, 100, 1001}) {
      for (int64_t granule : {1, 4, 16}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for(n, granule, [&](int64_t begin, int64_t end) {
          EXPECT_LT(begin, end);
          EXPECT_EQ(begin % granule, 0) << "range start not aligned to the granule";
          for (int64_t i = begin; i < end; ++i)
            hits[static_cast<size_t>(i)].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i)
          EXPECT_EQ(hits[static_cast<size_t>(i)].load(), 1) << i;
      }
    }
  }
}

TEST(ThreadPool, ExceptionsPropagateAndThePoolStaysUsable) {
  ThreadPool pool(3);
  for (int thrower : {0, 1, 2}) {
    EXPECT_THROW(pool.run([&](int index, int) {
      if (index == thrower) throw std::runtime_error("boom");
    }),
                 std::runtime_error);
  }
  EXPECT_THROW(pool.parallel_for(300, 1,
                                 [](int64_t begin, int64_t) {
                                   if (begin > 0)
                                     throw Error(ErrorKind::invalid_input, "late range");
                                 }),
               Error);
  std::atomic<int> calls{0};
  pool.run([&](int, int) { calls.fetch_add(1); });
  EXPECT_EQ(calls.load(), 3);
}

TEST(ThreadPool, RejectsAnEmptyPool) {
  EXPECT_THROW(ThreadPool(0), Error);
}

// The I2_S gemm split by rows over 1, 2 and 3 threads gives bit-identical outputs.
TEST(ThreadPool, KernelResultsDoNotDependOnTheThreadCount) {
  std::mt19937 rng(21);
  const int64_t rows = 203, k = 1280, n_tok = 5;
  std::vector<uint8_t> w(static_cast<size_t>(rows * k / 4));
  std::uniform_int_distribution<int> code(0, 2);
  for (auto& b : w)
    b = static_cast<uint8_t>(code(rng) << 6 | code(rng) << 4 | code(rng) << 2 | code(rng));
  std::normal_distribution<float> nd;
  std::vector<float> x(static_cast<size_t>(n_tok * k));
  for (auto& v : x)
    v = nd(rng);
  for (Isa isa : available_isas()) {
    const Table& t = table_for(isa);
    std::vector<int8_t> q(x.size());
    std::vector<float> scales(n_tok);
    std::vector<int32_t> sums(n_tok);
    for (int64_t i = 0; i < n_tok; ++i)
      t.quantize_act(x.data() + i * k, k, q.data() + i * k, &scales[i], &sums[i]);
    std::vector<std::vector<float>> results;
    for (int n_threads : {1, 2, 3}) {
      ThreadPool pool(n_threads);
      std::vector<float> out(static_cast<size_t>(n_tok * rows));
      pool.parallel_for(rows, 4, [&](int64_t r0, int64_t r1) {
        t.i2s_gemm(w.data(), 0.5f, k, r0, r1, q.data(), scales.data(), sums.data(), n_tok,
                   out.data(), rows);
      });
      results.push_back(out);
    }
    EXPECT_EQ(results[0], results[1]) << to_string(isa);
    EXPECT_EQ(results[0], results[2]) << to_string(isa);
  }
}

} // namespace
} // namespace bitnet::kernels
