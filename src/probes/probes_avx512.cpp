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

// vpdpbusd has a latency of about 5 cycles at up to 2 per cycle: 12 chains cover it, each
// the product of its own (a, b) pair so none can be shared.
constexpr int kA = 2;
constexpr int kB = 6;
constexpr int kChains = kA * kB;

uint64_t mac_loop(int64_t iters) {
  __m512i a[kA], b[kB], acc[kChains];
  for (int i = 0; i < kA; ++i)
    a[i] = _mm512_set1_epi8(static_cast<char>(i + 1));
  for (int j = 0; j < kB; ++j)
    b[j] = _mm512_set1_epi8(static_cast<char>(j + 3));
  for (int c = 0; c < kChains; ++c)
    acc[c] = _mm512_setzero_si512();
  for (int64_t n = 0; n < iters; ++n) {
    for (int i = 0; i < kA; ++i)
      __asm__ volatile("" : "+v"(a[i]));
    for (int i = 0; i < kA; ++i)
      for (int j = 0; j < kB; ++j)
        acc[i * kB + j] = _mm512_dpbusd_epi32(acc[i * kB + j], a[i], b[j]);
  }
  __m512i s = acc[0];
  for (int c = 1; c < kChains; ++c)
    s = _mm512_add_epi32(s, acc[c]);
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
