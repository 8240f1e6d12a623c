// AVX-VNNI probe: vpdpbusd on ymm registers, VEX-encoded (u8×s8, four products summed into
// each int32 lane): the MAC step of the avxvnni I2_S gemm. Streaming reads are AVX2's.
#include <immintrin.h>

#include "probes/probes.hpp"

namespace bitnet::probes {
namespace {

// vpdpbusd has a latency of about 5 cycles at up to 2 per cycle: 12 chains cover it, one asm
// statement per round as in probes_avx512.cpp ({vex}: the assembler's default is EVEX).
constexpr int kChains = 12;

uint64_t mac_loop(int64_t iters) {
  __m256i c[kChains];
  // Unrolled, so that the accumulators live in registers.
#pragma GCC unroll 16
  for (int i = 0; i < kChains; ++i)
    c[i] = _mm256_set1_epi32(i);
  const __m256i a = _mm256_set1_epi8(1);
  const __m256i b = _mm256_set1_epi8(3);
  for (int64_t n = 0; n < iters; ++n)
    __asm__ volatile("%{vex%} vpdpbusd %[b], %[a], %[c0]\n\t"
                     "%{vex%} vpdpbusd %[b], %[a], %[c1]\n\t"
                     "%{vex%} vpdpbusd %[b], %[a], %[c2]\n\t"
                     "%{vex%} vpdpbusd %[b], %[a], %[c3]\n\t"
                     "%{vex%} vpdpbusd %[b], %[a], %[c4]\n\t"
                     "%{vex%} vpdpbusd %[b], %[a], %[c5]\n\t"
                     "%{vex%} vpdpbusd %[b], %[a], %[c6]\n\t"
                     "%{vex%} vpdpbusd %[b], %[a], %[c7]\n\t"
                     "%{vex%} vpdpbusd %[b], %[a], %[c8]\n\t"
                     "%{vex%} vpdpbusd %[b], %[a], %[c9]\n\t"
                     "%{vex%} vpdpbusd %[b], %[a], %[c10]\n\t"
                     "%{vex%} vpdpbusd %[b], %[a], %[c11]"
                     : [c0] "+x"(c[0]), [c1] "+x"(c[1]), [c2] "+x"(c[2]), [c3] "+x"(c[3]),
                       [c4] "+x"(c[4]), [c5] "+x"(c[5]), [c6] "+x"(c[6]), [c7] "+x"(c[7]),
                       [c8] "+x"(c[8]), [c9] "+x"(c[9]), [c10] "+x"(c[10]), [c11] "+x"(c[11])
                     : [a] "x"(a), [b] "x"(b));
  __m256i s = c[0];
#pragma GCC unroll 16
  for (int i = 1; i < kChains; ++i)
    s = _mm256_add_epi32(s, c[i]);
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  uint64_t sum = 0;
  for (int32_t v : lanes)
    sum += static_cast<uint32_t>(v);
  return sum;
}

} // namespace

const Probe& probe_avxvnni() {
  static const Probe p{"avxvnni", "vpdpbusd ymm (AVX-VNNI)", probe_avx2().stream_sum, mac_loop,
                       kChains * 32};
  return p;
}

} // namespace bitnet::probes
