// The two physical limits the kernel benchmarks are compared against, one implementation
// per ISA translation unit (compiled with that ISA's flags, like src/kernels):
// - streaming-read bandwidth: sum a buffer far larger than the caches with the widest loads;
// - int8 multiply-accumulate peak: independent chains of the ISA's int8 MAC instruction on
//   register-resident data (no loads), enough chains to cover its latency.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bitnet::bench {

struct Probe {
  const char* isa;             // the kernel variant whose instructions it uses
  const char* mac_instruction; // what the MAC peak counts, e.g. "vpmaddubsw+vpaddw (AVX2)"
  // Sum of the 64-bit words of [p, p + n); n is a multiple of 256.
  uint64_t (*stream_sum)(const uint8_t* p, size_t n);
  // Runs `iters` rounds of the MAC loop and returns a value that depends on all of them.
  uint64_t (*mac_loop)(int64_t iters);
  int64_t macs_per_iter; // int8 multiply-accumulates per round
};

#if defined(__x86_64__)
const Probe& probe_avx2();   // probes_avx2.cpp
const Probe& probe_avx512(); // probes_avx512.cpp (AVX-512 F+BW+VL+VNNI)
#elif defined(__aarch64__)
const Probe& probe_neon_dotprod(); // probes_neon_dotprod.cpp
#endif

} // namespace bitnet::bench
