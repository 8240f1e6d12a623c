#include "kernels/cpu_limits.hpp"

#include <sched.h>

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

// floor(quota / period) of one cpu.max file ("max 100000" or "150000 100000"), or 0.
int quota_of(const std::filesystem::path& cpu_max) {
  std::istringstream in(first_line(cpu_max));
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

// The tightest cpu.max quota of the cgroup and its ancestors (a parent's quota binds its
// children too), or 0 when none is set.
int cgroup_quota(const std::filesystem::path& root) {
  const std::string path = cgroup_v2_path(root);
  if (path.empty() || path[0] != '/') return 0;
  const std::filesystem::path base = root / "sys/fs/cgroup";
  std::filesystem::path rel = std::filesystem::path(path).relative_path();
  int tightest = 0;
  for (;;) {
    const int q = quota_of(base / rel / "cpu.max");
    if (q > 0) tightest = tightest == 0 ? q : std::min(tightest, q);
    if (rel.empty()) break;
    rel = rel.parent_path();
  }
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

int usable_cpus(const CpuLimits& l) {
  const int n = l.quota_cpus > 0 ? std::min(l.affinity_cpus, l.quota_cpus) : l.affinity_cpus;
  return std::max(1, n);
}

} // namespace bitnet::kernels
