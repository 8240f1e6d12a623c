// Probe selection and the threaded, timed passes shared by bench_kernels and `bitnet bench`.
#include "probes/probes.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "bitnet/error.hpp"
#include "kernels/kernels.hpp"

namespace bitnet::probes {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kAlign = 64;
constexpr size_t kBandwidthBytes = size_t{256} << 20;
constexpr int kBandwidthPasses = 4;
constexpr int64_t kMacIters = int64_t{1} << 23; // ~10-20 ms per pass on a current core
constexpr int kMacPasses = 5;

// Best rate of `passes` timed calls of fn, which does `work` units per call.
template <class Fn> double best_rate(int passes, double work, Fn fn) {
  double best = 0.0;
  for (int i = 0; i < passes; ++i) {
    const auto t0 = Clock::now();
    fn();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, work / s);
  }
  return best;
}

} // namespace

const Probe& probe_for(kernels::Isa isa) {
  const auto avail = kernels::available_isas();
  if (std::find(avail.begin(), avail.end(), isa) == avail.end()) {
    throw Error(ErrorKind::invalid_argument, std::string("no probe for ISA '") +
                                                 kernels::to_string(isa) +
                                                 "': not available on this CPU");
  }
  switch (isa) {
#if defined(__x86_64__)
  case kernels::Isa::avx2:
    return probe_avx2();
  case kernels::Isa::avxvnni:
    return probe_avxvnni();
  case kernels::Isa::avx512:
    return probe_avx512();
  case kernels::Isa::amx:
    return probe_amx();
#elif defined(__aarch64__)
  case kernels::Isa::neon:
    return probe_neon();
  case kernels::Isa::neon_dotprod:
    return probe_neon_dotprod();
#endif
  default:
    return probe_baseline();
  }
}

size_t stream_read_bytes(size_t n, int n_threads) {
  const auto threads = static_cast<size_t>(n_threads);
  return n / threads / 256 * 256 * threads;
}

uint64_t stream_read(const Probe& probe, kernels::ThreadPool& pool, const uint8_t* p, size_t n) {
  std::vector<uint64_t> sums(static_cast<size_t>(pool.size()));
  pool.run([&](int index, int n_threads) {
    const size_t share = stream_read_bytes(n, n_threads) / static_cast<size_t>(n_threads);
    sums[static_cast<size_t>(index)] =
        probe.stream_sum(p + share * static_cast<size_t>(index), share);
  });
  uint64_t total = 0;
  for (uint64_t s : sums)
    total += s;
  return total;
}

uint64_t mac_run(const Probe& probe, kernels::ThreadPool& pool, int64_t iters) {
  std::vector<uint64_t> sums(static_cast<size_t>(pool.size()));
  pool.run([&](int index, int) { sums[static_cast<size_t>(index)] = probe.mac_loop(iters); });
  uint64_t total = 0;
  for (uint64_t s : sums)
    total += s;
  return total;
}

double measure_bandwidth_gbps(const Probe& probe, kernels::ThreadPool& pool) {
  struct AlignedFree {
    void operator()(uint64_t* p) const { ::operator delete[](p, std::align_val_t{kAlign}); }
  };
  constexpr size_t kWords = kBandwidthBytes / sizeof(uint64_t);
  const std::unique_ptr<uint64_t[], AlignedFree> buf(
      static_cast<uint64_t*>(::operator new[](kBandwidthBytes, std::align_val_t{kAlign})));
  std::fill_n(buf.get(), kWords, uint64_t{1});
  const auto* bytes = reinterpret_cast<const uint8_t*>(buf.get());
  const size_t read = stream_read_bytes(kBandwidthBytes, pool.size());
  uint64_t sum = 0;
  const double rate = best_rate(kBandwidthPasses, static_cast<double>(read),
                                [&] { sum = stream_read(probe, pool, bytes, kBandwidthBytes); });
  // Every word is 1: a wrong sum means the probe did not read what it was timed for.
  if (sum != read / sizeof(uint64_t)) {
    throw Error(ErrorKind::io, "bandwidth probe: unexpected read result");
  }
  return rate / 1e9;
}

double measure_mac_peak_gmacs(const Probe& probe, kernels::ThreadPool& pool) {
  const double macs = static_cast<double>(kMacIters * probe.macs_per_iter * pool.size());
  return best_rate(kMacPasses, macs, [&] { mac_run(probe, pool, kMacIters); }) / 1e9;
}

} // namespace bitnet::probes
