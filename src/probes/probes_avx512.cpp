// AVX-512 probes: 512-bit streaming loads, and vpdpbusd (u8×s8, four products summed into
// each int32 lane): the MAC step of the AVX-512 I2_S kernel.
#include <immintrin.h>

#include "probes/probes.hpp"

namespace bitnet::probes {
namespace {

uint64_t stream_sum(const uint8_t* p, size_t n) {
  __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                    _mm512_setzero_si512()};
  for (size_t i = 0; i < n; i += 256)
    for (int j = 0; j < 4; ++j)
      acc[j] = _mm512_add_epi64(acc[j], _mm512_load_si512(p + i + 64 * j));
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(
      lanes, _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3])));
  uint64_t sum = 0;
  for (uint64_t v : lanes)
    sum += v;
  return sum;
}

// vpdpbusd has a latency of about 5 cycles at up to 2 per cycle: 12 chains cover it. One asm
// statement per round fixes the instructions (objdump: 12 vpdpbusd and the loop counter):
// from intrinsics GCC 12 copies every accumulator around its vpdpbusd, and merges chains it
// can prove equal. Multiply and add being one instruction, nothing can be hoisted, so the
// chains may share operands.
constexpr int kChains = 12;

uint64_t mac_loop(int64_t iters) {
  __m512i c[kChains];
  // Unrolled, so that the accumulators live in registers.
#pragma GCC unroll 16
  for (int i = 0; i < kChains; ++i)
    c[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi8(1);
  const __m512i b = _mm512_set1_epi8(3);
  for (int64_t n = 0; n < iters; ++n)
    __asm__ volatile("vpdpbusd %[b], %[a], %[c0]\n\t"
                     "vpdpbusd %[b], %[a], %[c1]\n\t"
                     "vpdpbusd %[b], %[a], %[c2]\n\t"
                     "vpdpbusd %[b], %[a], %[c3]\n\t"
                     "vpdpbusd %[b], %[a], %[c4]\n\t"
                     "vpdpbusd %[b], %[a], %[c5]\n\t"
                     "vpdpbusd %[b], %[a], %[c6]\n\t"
                     "vpdpbusd %[b], %[a], %[c7]\n\t"
                     "vpdpbusd %[b], %[a], %[c8]\n\t"
                     "vpdpbusd %[b], %[a], %[c9]\n\t"
                     "vpdpbusd %[b], %[a], %[c10]\n\t"
                     "vpdpbusd %[b], %[a], %[c11]"
                     : [c0] "+v"(c[0]), [c1] "+v"(c[1]), [c2] "+v"(c[2]), [c3] "+v"(c[3]),
                       [c4] "+v"(c[4]), [c5] "+v"(c[5]), [c6] "+v"(c[6]), [c7] "+v"(c[7]),
                       [c8] "+v"(c[8]), [c9] "+v"(c[9]), [c10] "+v"(c[10]), [c11] "+v"(c[11])
                     : [a] "v"(a), [b] "v"(b));
  __m512i s = c[0];
#pragma GCC unroll 16
  for (int i = 1; i < kChains; ++i)
    s = _mm512_add_epi32(s, c[i]);
  // Not _mm512_reduce_*: GCC 12 warns about its own header there (-Wuninitialized).
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, s);
  uint64_t sum = 0;
  for (int32_t v : lanes)
    sum += static_cast<uint32_t>(v);
  return sum;
}

} // namespace

const Probe& probe_avx512() {
  static const Probe p{"avx512", "vpdpbusd (AVX-512 VNNI)", stream_sum, mac_loop, kChains * 64};
  return p;
}

} // namespace bitnet::probes
