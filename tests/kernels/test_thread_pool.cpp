#include <gtest/gtest.h>

#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "bitnet/error.hpp"
#include "kernels/cpu_limits.hpp"
#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"
#include "support/temp_dir.hpp"

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

// A thread stuck inside one range (descheduled on a busy host) holds up only that range: the
// others finish the rest of its share. The stuck range waits until everything else is done,
// which cannot happen if the share were bound to its thread (the test would then time out).
TEST(ThreadPool, ParallelForLetsOtherThreadsFinishAStalledShare) {
  for (int n_threads : {2, 3}) {
    ThreadPool pool(n_threads);
    constexpr int64_t n = 256;
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    std::atomic<int64_t> done{0};
    std::atomic<bool> timed_out{false};
    pool.parallel_for(n, 1, [&](int64_t begin, int64_t end) {
      if (begin == 0) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (done.load() != n - end && !timed_out.load()) {
          if (std::chrono::steady_clock::now() > deadline) timed_out.store(true);
          std::this_thread::yield();
        }
      }
      for (int64_t i = begin; i < end; ++i)
        hits[static_cast<size_t>(i)].fetch_add(1);
      done.fetch_add(end - begin);
    });
    EXPECT_FALSE(timed_out.load()) << n_threads << " threads: the stalled share was not taken over";
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(hits[static_cast<size_t>(i)].load(), 1) << i;
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

// More threads than usable CPUs: the pool yields instead of spinning, and every index of
// every region still runs exactly once (whichever thread claims it).
TEST(ThreadPool, OversubscribedPoolRunsEveryIndexOnce) {
  const int n = usable_cpus(cpu_limits()) + 2;
  ThreadPool pool(n);
  EXPECT_FALSE(pool.spins());
  for (int rep = 0; rep < 200; ++rep) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    pool.run([&](int index, int n_threads) {
      EXPECT_EQ(n_threads, n);
      hits[static_cast<size_t>(index)].fetch_add(1);
    });
    for (int i = 0; i < n; ++i)
      ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i << " rep " << rep;
  }
  EXPECT_TRUE(ThreadPool(1).spins());
}

// Regression: a failed thread creation used to hang in pthread_cond_destroy while the
// constructor unwound. Now the workers already started are stopped and the error names the
// thread and the cause (EAGAIN, as pthread_create reports a thread or memory limit).
TEST(ThreadPool, FailedThreadCreationIsACleanError) {
  for (int fail_at : {1, 3}) {
    ASSERT_EQ(setenv("BITNET_FAIL_THREAD_CREATE", std::to_string(fail_at).c_str(), 1), 0);
    try {
      ThreadPool pool(5);
      ADD_FAILURE() << "no error when creating worker " << fail_at;
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::resource_unavailable_try_again);
      const std::string msg = e.what();
      EXPECT_NE(msg.find("cannot create worker thread " + std::to_string(fail_at) + " of 5"),
                std::string::npos)
          << msg;
    }
    unsetenv("BITNET_FAIL_THREAD_CREATE");
  }
  ThreadPool pool(3); // without the seam, creation works
  std::atomic<int> calls{0};
  pool.run([&](int, int) { calls.fetch_add(1); });
  EXPECT_EQ(calls.load(), 3);
}

// A fake /sys and /proc tree for read_cpu_limits.
class CpuTree {
public:
  void cpu(int id, const std::string& siblings) {
    write(fmt("sys/devices/system/cpu/cpu", id) + "/topology/thread_siblings", siblings);
  }
  void cgroup(const std::string& line) { write("proc/self/cgroup", line); }
  void cpu_max(const std::string& dir, const std::string& value) {
    write("sys/fs/cgroup" + dir + "/cpu.max", value);
  }
  void memory_max(const std::string& dir, const std::string& value) {
    write("sys/fs/cgroup" + dir + "/memory.max", value);
  }
  CpuLimits read(const std::vector<int>& allowed) const {
    return read_cpu_limits(dir_ / "", allowed);
  }
  uint64_t memory(uint64_t ram) const { return memory_limit(dir_ / "", ram); }

private:
  static std::string fmt(const std::string& prefix, int id) { return prefix + std::to_string(id); }
  void write(const std::string& rel, const std::string& text) {
    const std::filesystem::path path = dir_ / rel;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text << "\n";
  }
  test::TempDir dir_;
};

TEST(CpuLimits, PhysicalCoresAsLlamaCppCountsThem) {
  CpuTree t; // 4 CPUs, 2 cores with 2 hyperthreads each (siblings masks 5 and a)
  t.cpu(0, "5");
  t.cpu(1, "a");
  t.cpu(2, "5");
  t.cpu(3, "a");
  const CpuLimits all = t.read({0, 1, 2, 3});
  EXPECT_EQ(all.system_cpus, 4);
  EXPECT_EQ(all.affinity_cpus, 4);
  EXPECT_EQ(all.physical_cores, 2);
  EXPECT_EQ(all.quota_cpus, 0);
  std::string bound;
  EXPECT_EQ(default_thread_count(all, &bound), 2);
  EXPECT_EQ(bound, "2 physical cores");
  EXPECT_EQ(usable_cpus(all), 4);

  // taskset -c 0,2: both hyperthreads of one core.
  const CpuLimits one_core = t.read({0, 2});
  EXPECT_EQ(default_thread_count(one_core, &bound), 1);
  EXPECT_EQ(bound, "1 physical core in the affinity mask (2 of 4 CPUs)");
  EXPECT_EQ(usable_cpus(one_core), 2);
}

TEST(CpuLimits, CgroupQuotaRoundsDownAndParentsBind) {
  CpuTree t;
  for (int i = 0; i < 8; ++i)
    t.cpu(i, std::to_string(1 << i));
  const std::vector<int> all = {0, 1, 2, 3, 4, 5, 6, 7};
  t.cgroup("0::/pod/app");
  t.cpu_max("/pod/app", "max 100000");
  EXPECT_EQ(t.read(all).quota_cpus, 0); // no quota anywhere

  t.cpu_max("/pod/app", "350000 100000"); // 3.5 CPUs
  CpuLimits l = t.read(all);
  EXPECT_EQ(l.quota_cpus, 3);
  std::string bound;
  EXPECT_EQ(default_thread_count(l, &bound), 3);
  EXPECT_EQ(bound, "cgroup cpu.max quota of 3 CPUs");
  EXPECT_EQ(usable_cpus(l), 3);

  t.cpu_max("/pod", "200000 100000"); // the parent is tighter
  EXPECT_EQ(t.read(all).quota_cpus, 2);

  t.cpu_max("/pod", "50000 100000"); // half a CPU still runs one thread
  l = t.read(all);
  EXPECT_EQ(l.quota_cpus, 1);
  EXPECT_EQ(default_thread_count(l), 1);
  EXPECT_EQ(usable_cpus(l), 1);

  t.cgroup("1:cpu:/legacy"); // cgroup v1 only: no v2 path, no quota
  EXPECT_EQ(t.read(all).quota_cpus, 0);
}

TEST(CpuLimits, MemoryLimitIsRamBoundedByCgroups) {
  CpuTree t;
  EXPECT_EQ(t.memory(1000), 1000u); // no cgroup at all
  t.cgroup("0::/pod/app");
  t.memory_max("/pod/app", "max");
  EXPECT_EQ(t.memory(1000), 1000u);
  t.memory_max("/pod/app", "800");
  EXPECT_EQ(t.memory(1000), 800u);
  t.memory_max("/pod", "600"); // the parent is tighter
  EXPECT_EQ(t.memory(1000), 600u);
  EXPECT_EQ(t.memory(500), 500u); // RAM is tighter still
  EXPECT_GT(memory_limit(), 0u);
}

TEST(CpuLimits, MissingTopologyCountsEachCpu) {
  CpuTree t; // no sysfs entries at all
  const CpuLimits l = t.read({0, 1, 2});
  EXPECT_EQ(l.physical_cores, 3);
  EXPECT_EQ(l.system_cpus, 3);
  EXPECT_EQ(default_thread_count(l), 3);
}

TEST(CpuLimits, ThisProcessHasAtLeastOneThread) {
  const CpuLimits& l = cpu_limits();
  EXPECT_GE(default_thread_count(l), 1);
  EXPECT_LE(default_thread_count(l), usable_cpus(l));
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

// A worker that had to block after a few long idle gaps (loading, a prompt) spins through the
// short gaps between regions again once it has seen them, instead of sleeping through every
// one: each sleep costs a wake-up, and the worker joined each region of a decode step late. The
// gaps here (20 µs of caller work, far below the 200 µs spin limit and far above the 2 µs
// floor that the idle gaps halve the spin to) are bridged by spinning; a few may still block if
// the host deschedules the caller, hence the margin.
TEST(ThreadPool, WorkersSpinThroughShortGapsAfterLongIdleOnes) {
  ThreadPool pool(2);
  if (!pool.spins())
    GTEST_SKIP() << "NOT RUN: this process may use fewer than 2 CPUs, so the pool yields "
                    "instead of spinning";
  std::atomic<int> calls{0};
  const auto region = [&] { pool.run([&](int, int) { ++calls; }); };
  const auto busy = [](std::chrono::microseconds d) {
    const auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) {
    }
  };
  for (int i = 0; i < 12; ++i) { // long gaps: the spin halves to its floor
    region();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const uint64_t before = pool.blocked_waits();
  constexpr int kRegions = 400;
  for (int i = 0; i < kRegions; ++i) {
    busy(std::chrono::microseconds(20));
    region();
  }
  EXPECT_LT(pool.blocked_waits() - before, kRegions / 4u);
  EXPECT_EQ(calls.load(), 2 * (12 + kRegions));
}

// Every item's writes are seen after wait(), and the wait ends once the items are done: it does
// not wait for an index that is still asleep and holds none (a barrier of all indices would).
TEST(Completion, WaitsForEveryItemButNotForAThreadThatHoldsNone) {
  for (int n : {2, 3, 5}) {
    ThreadPool pool(n);
    constexpr int64_t kItems = 64;
    Completion done(kItems, pool.spins());
    std::vector<int64_t> value(kItems, 0);
    std::atomic<int64_t> next{0};
    std::atomic<bool> late_started{false};
    std::atomic<int> mismatches{0}, waits_before_late{0};
    pool.run([&](int ti, int nt) {
      if (ti == nt - 1) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        late_started = true;
      }
      for (int64_t i = next.fetch_add(1); i < kItems; i = next.fetch_add(1)) {
        value[static_cast<size_t>(i)] = i + 1;
        done.arrive();
      }
      done.wait();
      for (int64_t i = 0; i < kItems; ++i)
        if (value[static_cast<size_t>(i)] != i + 1) ++mismatches;
      if (!late_started) ++waits_before_late;
    });
    EXPECT_EQ(mismatches.load(), 0) << n << " threads";
    EXPECT_GE(waits_before_late.load(), 1) << n << " threads";
  }
}

} // namespace
} // namespace bitnet::kernels
