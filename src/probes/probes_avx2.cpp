// AVX2 probes: 256-bit streaming loads, and vpmaddubsw (u8×s8 pairs summed to int16) plus
// vpaddw into int16 accumulators: the MAC step of the AVX2 I2_S kernel.
#include <immintrin.h>

#include "probes/probes.hpp"

namespace bitnet::probes {
namespace {

uint64_t stream_sum(const uint8_t* p, size_t n) {
  __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                    _mm256_setzero_si256()};
  for (size_t i = 0; i < n; i += 128)
    for (int j = 0; j < 4; ++j)
      acc[j] = _mm256_add_epi64(
          acc[j], _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32 * j)));
  const __m256i s =
      _mm256_add_epi64(_mm256_add_epi64(acc[0], acc[1]), _mm256_add_epi64(acc[2], acc[3]));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

// 8 chains of vpmaddubsw into a temporary and vpaddw into the chain's int16 sums: only
// vpaddw (latency 1) is on a chain. One asm statement per round fixes the instructions
// (objdump: 8 of each and the loop counter): from intrinsics the products of loop-invariant
// operands can be hoisted out of the loop, leaving only the adds, and GCC 12 copies
// accumulators around their updates.
constexpr int kChains = 8;

uint64_t mac_loop(int64_t iters) {
  __m256i c[kChains];
  // Unrolled, so that the accumulators live in registers.
#pragma GCC unroll 16
  for (int i = 0; i < kChains; ++i)
    c[i] = _mm256_set1_epi16(static_cast<int16_t>(i));
  const __m256i a = _mm256_set1_epi8(1);
  const __m256i b = _mm256_set1_epi8(3);
  __m256i t;
  for (int64_t n = 0; n < iters; ++n)
    __asm__ volatile(
        "vpmaddubsw %[b], %[a], %[t]\n\t"
        "vpaddw %[t], %[c0], %[c0]\n\t"
        "vpmaddubsw %[b], %[a], %[t]\n\t"
        "vpaddw %[t], %[c1], %[c1]\n\t"
        "vpmaddubsw %[b], %[a], %[t]\n\t"
        "vpaddw %[t], %[c2], %[c2]\n\t"
        "vpmaddubsw %[b], %[a], %[t]\n\t"
        "vpaddw %[t], %[c3], %[c3]\n\t"
        "vpmaddubsw %[b], %[a], %[t]\n\t"
        "vpaddw %[t], %[c4], %[c4]\n\t"
        "vpmaddubsw %[b], %[a], %[t]\n\t"
        "vpaddw %[t], %[c5], %[c5]\n\t"
        "vpmaddubsw %[b], %[a], %[t]\n\t"
        "vpaddw %[t], %[c6], %[c6]\n\t"
        "vpmaddubsw %[b], %[a], %[t]\n\t"
        "vpaddw %[t], %[c7], %[c7]"
        : [c0] "+x"(c[0]), [c1] "+x"(c[1]), [c2] "+x"(c[2]), [c3] "+x"(c[3]), [c4] "+x"(c[4]),
          [c5] "+x"(c[5]), [c6] "+x"(c[6]), [c7] "+x"(c[7]), [t] "=&x"(t)
        : [a] "x"(a), [b] "x"(b));
  __m256i s = c[0];
#pragma GCC unroll 16
  for (int i = 1; i < kChains; ++i)
    s = _mm256_add_epi16(s, c[i]);
  return static_cast<uint64_t>(_mm256_extract_epi64(s, 0));
}

} // namespace

const Probe& probe_avx2() {
  static const Probe p{"avx2", "vpmaddubsw+vpaddw (AVX2)", stream_sum, mac_loop, kChains * 32};
  return p;
}

} // namespace bitnet::probes
