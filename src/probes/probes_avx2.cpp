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

// 6 chains, each the product of its own (a, b) pair so none can be shared; only vpaddw
// (latency 1) is on a chain. 2 + 3 operands and 6 sums leave the compiler spare registers.
constexpr int kA = 2;
constexpr int kB = 3;
constexpr int kChains = kA * kB;

uint64_t mac_loop(int64_t iters) {
  __m256i a[kA], b[kB], acc[kChains];
  for (int i = 0; i < kA; ++i)
    a[i] = _mm256_set1_epi8(static_cast<char>(i + 1));
  for (int j = 0; j < kB; ++j)
    b[j] = _mm256_set1_epi8(static_cast<char>(j + 3));
  for (int c = 0; c < kChains; ++c)
    acc[c] = _mm256_setzero_si256();
  for (int64_t n = 0; n < iters; ++n) {
    // Opaque updates of `a` keep the loop-invariant products inside the loop.
    for (int i = 0; i < kA; ++i)
      __asm__ volatile("" : "+x"(a[i]));
    for (int i = 0; i < kA; ++i)
      for (int j = 0; j < kB; ++j)
        acc[i * kB + j] = _mm256_add_epi16(acc[i * kB + j], _mm256_maddubs_epi16(a[i], b[j]));
  }
  __m256i s = acc[0];
  for (int c = 1; c < kChains; ++c)
    s = _mm256_add_epi16(s, acc[c]);
  return static_cast<uint64_t>(_mm256_extract_epi64(s, 0));
}

} // namespace

const Probe& probe_avx2() {
  static const Probe p{"avx2", "vpmaddubsw+vpaddw (AVX2)", stream_sum, mac_loop, kChains * 32};
  return p;
}

} // namespace bitnet::probes
