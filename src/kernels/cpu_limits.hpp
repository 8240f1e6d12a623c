// What this process may use. CPUs: how many threads it can usefully run: the CPUs it may use (its
// affinity mask and its cgroup v2 cpu.max quota) and the physical cores among them, counted as
// llama.cpp's cpu_get_num_physical_cores does (one core per distinct thread_siblings mask).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace bitnet::kernels {

struct CpuLimits {
  int system_cpus = 1;    // CPUs the system has (cpuN entries in sysfs)
  int affinity_cpus = 1;  // CPUs in the affinity mask
  int physical_cores = 1; // distinct thread_siblings masks among the allowed CPUs
  int quota_cpus = 0;     // floor(cpu.max quota / period) over the cgroup and its parents
                          // (at least 1); 0 = no quota
};

// Reads the limits for the CPU ids in `allowed` (the affinity mask) under `root`, where
// sys/devices/system/cpu, proc/self/cgroup and sys/fs/cgroup are looked up (tests pass a
// fake tree). A missing file means no limit from it.
CpuLimits read_cpu_limits(const std::filesystem::path& root, const std::vector<int>& allowed);

// This process's limits (sched_getaffinity and the real /sys, /proc), read once.
const CpuLimits& cpu_limits();

// The default thread count: physical cores bounded by the affinity mask and the quota, at
// least 1. `bound` (when given) names what decided it, for the log.
int default_thread_count(const CpuLimits& limits, std::string* bound = nullptr);

// Logical CPUs this process's threads may occupy at once: the affinity mask bounded by the
// quota, at least 1. A pool larger than this must not spin (its threads would spin on a CPU
// another of them needs).
int usable_cpus(const CpuLimits& limits);

// Bytes of memory this process may use: `ram` bounded by the cgroup v2 memory.max of its
// cgroup and every parent (looked up under `root`, as read_cpu_limits does).
uint64_t memory_limit(const std::filesystem::path& root, uint64_t ram);
// The same for this process: physical RAM and the real /proc and /sys.
uint64_t memory_limit();

} // namespace bitnet::kernels
