#include "kernels/cpu_limits.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

namespace bitnet::kernels {
namespace {

std::string first_line(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  return line;
}

// The cgroup v2 path of this process ("0::/a/b" in proc/self/cgroup), or "" when none.
std::string cgroup_v2_path(const std::filesystem::path& root) {
  std::ifstream in(root / "proc/self/cgroup");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("0::")) return line.substr(3);
  return "";
}

// Calls f(first line) for `file` in this process's cgroup v2 directory and each parent up
// to the root (a parent's limit binds its children too).
template <class F>
void for_each_cgroup_file(const std::filesystem::path& root, const char* file, F f) {
  const std::string path = cgroup_v2_path(root);
  if (path.empty() || path[0] != '/') return;
  const std::filesystem::path base = root / "sys/fs/cgroup";
  for (std::filesystem::path rel = std::filesystem::path(path).relative_path();;
       rel = rel.parent_path()) {
    const std::string line = first_line(base / rel / file);
    if (!line.empty()) f(line);
    if (rel.empty()) break;
  }
}

// floor(quota / period) of one cpu.max line ("max 100000" or "150000 100000"), or 0.
int quota_of(const std::string& cpu_max) {
  std::istringstream in(cpu_max);
  std::string quota;
  long long period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
  long long q = 0;
  try {
    q = std::stoll(quota);
  } catch (const std::exception&) {
    return 0;
  }
  if (q <= 0) return 0;
  return static_cast<int>(std::clamp<long long>(q / period, 1, 1 << 20));
}

// The tightest cpu.max quota of the cgroup and its parents, or 0 when none is set.
int cgroup_quota(const std::filesystem::path& root) {
  int tightest = 0;
  for_each_cgroup_file(root, "cpu.max", [&](const std::string& line) {
    const int q = quota_of(line);
    if (q > 0) tightest = tightest == 0 ? q : std::min(tightest, q);
  });
  return tightest;
}

std::vector<int> affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  if (cpus.empty()) { // unknown: every CPU the system reports
    const int n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int cpu = 0; cpu < n; ++cpu)
      cpus.push_back(cpu);
  }
  return cpus;
}

} // namespace

CpuLimits read_cpu_limits(const std::filesystem::path& root, const std::vector<int>& allowed) {
  CpuLimits l;
  l.affinity_cpus = std::max<int>(1, static_cast<int>(allowed.size()));
  std::error_code ec;
  int system = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(root / "sys/devices/system/cpu", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 3 && name.starts_with("cpu") &&
        name.find_first_not_of("0123456789", 3) == std::string::npos)
      ++system;
  }
  l.system_cpus = std::max(system, l.affinity_cpus);
  // One physical core per distinct sibling mask; a CPU without topology counts as its own.
  std::set<std::string> cores;
  for (int cpu : allowed) {
    const std::string siblings = first_line(
        root / fmt::format("sys/devices/system/cpu/cpu{}/topology/thread_siblings", cpu));
    cores.insert(siblings.empty() ? fmt::format("cpu{}", cpu) : siblings);
  }
  l.physical_cores = std::max<int>(1, static_cast<int>(cores.size()));
  l.quota_cpus = cgroup_quota(root);
  return l;
}

const CpuLimits& cpu_limits() {
  static const CpuLimits limits = read_cpu_limits("/", affinity_cpus());
  return limits;
}

int default_thread_count(const CpuLimits& l, std::string* bound) {
  // Physical cores are counted among the allowed CPUs, so they never exceed the mask.
  int n = l.physical_cores;
  const char* cores = n == 1 ? "core" : "cores";
  std::string why = l.affinity_cpus < l.system_cpus
                        ? fmt::format("{} physical {} in the affinity mask ({} of {} CPUs)", n,
                                      cores, l.affinity_cpus, l.system_cpus)
                        : fmt::format("{} physical {}", n, cores);
  if (l.quota_cpus > 0 && l.quota_cpus < n) {
    n = l.quota_cpus;
    why = fmt::format("cgroup cpu.max quota of {} CPUs", l.quota_cpus);
  }
  if (bound) *bound = why;
  return std::max(1, n);
}

uint64_t memory_limit(const std::filesystem::path& root, uint64_t ram) {
  uint64_t limit = ram;
  for_each_cgroup_file(root, "memory.max", [&](const std::string& line) {
    if (line == "max") return;
    try {
      limit = std::min<uint64_t>(limit, std::stoull(line));
    } catch (const std::exception&) {
      // not a number: no limit from this file
    }
  });
  return limit;
}

uint64_t memory_limit() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  const uint64_t ram = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * page : UINT64_MAX;
  return memory_limit("/", ram);
}

int usable_cpus(const CpuLimits& l) {
  const int n = l.quota_cpus > 0 ? std::min(l.affinity_cpus, l.quota_cpus) : l.affinity_cpus;
  return std::max(1, n);
}

} // namespace bitnet::kernels
