// Baseline probes, compiled without ISA flags, for CPUs that run none of the SIMD probes'
// instructions (x86 without AVX2, Armv8.0 without dotprod): plain 64-bit loads, and int32
// multiply-adds of int8 values, which is what the scalar I2_S kernel does per weight.
#include <cstring>

#include "probes/probes.hpp"

namespace bitnet::probes {
namespace {

uint64_t stream_sum(const uint8_t* p, size_t n) {
  uint64_t acc[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < n; i += 32)
    for (size_t j = 0; j < 4; ++j) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * j, sizeof w);
      acc[j] += w;
    }
  return acc[0] + acc[1] + acc[2] + acc[3];
}

// 8 chains, each the product of its own (a, b) pair so none can be shared.
constexpr int kA = 2;
constexpr int kB = 4;
constexpr int kChains = kA * kB;

uint64_t mac_loop(int64_t iters) {
  int32_t a[kA], b[kB], acc[kChains] = {};
  for (int i = 0; i < kA; ++i)
    a[i] = i + 1;
  for (int j = 0; j < kB; ++j)
    b[j] = j + 3;
  for (int64_t n = 0; n < iters; ++n) {
    // Opaque updates of `a` keep the loop-invariant products inside the loop.
    for (int i = 0; i < kA; ++i)
      __asm__ volatile("" : "+r"(a[i]));
    for (int i = 0; i < kA; ++i)
      for (int j = 0; j < kB; ++j)
        acc[i * kB + j] += a[i] * b[j];
  }
  uint64_t sum = 0;
  for (int32_t v : acc)
    sum += static_cast<uint32_t>(v);
  return sum;
}

} // namespace

const Probe& probe_baseline() {
  static const Probe p{"scalar", "int32 multiply-add of int8 values (no SIMD flags)", stream_sum,
                       mac_loop, kChains};
  return p;
}

} // namespace bitnet::probes
