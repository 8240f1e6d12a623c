// Internal: intrinsic helpers shared by the AVX2 and AVX-512 translation units only (both are
// compiled with at least AVX2+FMA+F16C). Internal linkage for the reason given in
// kernel_common.hpp.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace bitnet::kernels {
namespace {

// Tokens that share one unpacked I2_S weight block in the gemm.
inline constexpr int kI2sTileTokens = 8;

// Decode streams each I2_S weight byte from memory once; the unpack leaves the core too
// few loads in flight for the hardware prefetcher alone to keep up, so gemv prefetches
// this far ahead.
inline constexpr int64_t kI2sPrefetchBytes = 2048;

inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// 8 halves → 8 floats.
inline __m256 load_ph(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax_ps(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

} // namespace
} // namespace bitnet::kernels
