// The two physical limits kernel and end-to-end throughput are compared against, one
// implementation per ISA translation unit (compiled with that ISA's flags, like src/kernels):
// - streaming-read bandwidth: sum a buffer far larger than the caches with the widest loads;
// - int8 multiply-accumulate peak: independent chains of the ISA's int8 MAC instruction on
//   register-resident data (no loads), enough chains to cover its latency.
// bench_kernels and `bitnet bench` both measure through this library.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"

namespace bitnet::probes {

struct Probe {
  const char* isa;             // the kernel variant whose instructions it uses
  const char* mac_instruction; // what the MAC peak counts, e.g. "vpmaddubsw+vpaddw (AVX2)"
  // Sum of the 64-bit words of [p, p + n); p is 64-byte aligned, n a multiple of 256.
  uint64_t (*stream_sum)(const uint8_t* p, size_t n);
  // Runs `iters` rounds of the MAC loop and returns a value that depends on all of them.
  uint64_t (*mac_loop)(int64_t iters);
  int64_t macs_per_iter; // int8 multiply-accumulates per round
};

// The probe of a kernel variant's int8 instruction (e.g. vpmaddubsw for avx2, vpdpbusd zmm
// for avx512, sdot for neon_dotprod; the baseline probe, compiled without ISA flags, for
// scalar). `isa` must be available on this CPU (kernels::available_isas()): the probe runs
// its instructions.
const Probe& probe_for(kernels::Isa isa);

// Bytes one stream_read pass over n bytes reads with n_threads threads: equal shares of a
// multiple of 256 bytes each.
size_t stream_read_bytes(size_t n, int n_threads);

// One streaming-read pass: each thread of `pool` sums its contiguous share of [p, p + n)
// (p 64-byte aligned). Returns the sum of every 64-bit word read.
uint64_t stream_read(const Probe& probe, kernels::ThreadPool& pool, const uint8_t* p, size_t n);

// One MAC pass: every thread of `pool` runs `iters` rounds of the MAC loop. Returns a value
// that depends on all of them; the pass performs iters · macs_per_iter · pool.size() MACs.
uint64_t mac_run(const Probe& probe, kernels::ThreadPool& pool, int64_t iters);

// The limits as `bitnet bench` reports them: the best of a few timed passes with the threads
// of `pool`. Bandwidth reads a 256 MiB buffer (L3 is 32 MiB here), in GB/s; the MAC peak is
// in G multiply-accumulates per second.
double measure_bandwidth_gbps(const Probe& probe, kernels::ThreadPool& pool);
double measure_mac_peak_gmacs(const Probe& probe, kernels::ThreadPool& pool);

const Probe& probe_baseline(); // probes_baseline.cpp: compiled without ISA flags
#if defined(__x86_64__)
const Probe& probe_avx2();    // probes_avx2.cpp
const Probe& probe_avxvnni(); // probes_avxvnni.cpp
const Probe& probe_avx512();  // probes_avx512.cpp (AVX-512 F+BW+VL+VNNI)
const Probe& probe_amx();     // probes_amx.cpp (AMX-TILE+INT8)
#elif defined(__aarch64__)
const Probe& probe_neon();         // probes_neon.cpp
const Probe& probe_neon_dotprod(); // probes_neon_dotprod.cpp
#endif

} // namespace bitnet::probes
