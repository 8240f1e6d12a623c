// Internal: intrinsic helpers shared by the AVX2 and AVX-512 translation units only (both are
// compiled with at least AVX2+FMA+F16C). Internal linkage for the reason given in
// kernel_common.hpp.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/kernel_common.hpp"

namespace bitnet::kernels {
namespace {

// Tokens that share one unpacked I2_S weight block in the gemm.
inline constexpr int kI2sTileTokens = 8;

// Decode streams each I2_S weight byte from memory once; the unpack leaves the core too
// few loads in flight for the hardware prefetcher alone to keep up, so gemv prefetches
// this far ahead.
inline constexpr int64_t kI2sPrefetchBytes = 2048;
// The same for Q8_0 rows (the head screen streams 349 MB per token on 2B-4T).
inline constexpr int64_t kQ8PrefetchBytes = 2048;

inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// 8 halves → 8 floats.
inline __m256 load_ph(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// The f16 scale d of a Q8_0 block as a float.
inline float q8_block_scale(const uint8_t* block) {
  uint16_t d;
  std::memcpy(&d, block, sizeof d);
  return _cvtsh_ss(d);
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

// ggml's Q8_0 order (kernel_common.hpp) for NR rows w[0..NR) against one operand x; the rows
// share each operand load and scale. dot4(|w|, x with w's sign) gives the 8 exact int32 sums
// of 4 products (|w| is unsigned, 128 for -128; activations are never -128): the AVX2 and
// AVX-512 variants differ only there.
template <int NR, class Dot4>
void q8_0_rows_dot(Dot4 dot4, const uint8_t* const* w, const uint8_t* x, int64_t nb, float* out) {
  __m256 acc[NR];
  for (int r = 0; r < NR; ++r)
    acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* xb = x + b * kQ8BlockBytes;
    const float dx = q8_block_scale(xb);
    const __m256i qx = load256(xb + 2);
    for (int r = 0; r < NR; ++r) {
      const uint8_t* wb = w[r] + b * kQ8BlockBytes;
      _mm_prefetch(reinterpret_cast<const char*>(wb + kQ8PrefetchBytes), _MM_HINT_T0);
      const __m256 d = _mm256_set1_ps(q8_block_scale(wb) * dx);
      const __m256i qw = load256(wb + 2);
      const __m256i sums = dot4(_mm256_sign_epi8(qw, qw), _mm256_sign_epi8(qx, qw));
      acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc[r]);
    }
  }
  for (int r = 0; r < NR; ++r)
    out[r] = hsum_ps(acc[r]);
}

template <class Dot4>
void q8_0_gemm_avx(Dot4 dot4, const uint8_t* w, int64_t k, int64_t r0, int64_t r1,
                   const uint8_t* xq, int64_t n_tok, float* out, int64_t ld_out) {
  q8_0_gemm_rows([&](auto nr, auto... args) { q8_0_rows_dot<decltype(nr)::value>(dot4, args...); },
                 w, k, r0, r1, xq, n_tok, out, ld_out);
}

} // namespace
} // namespace bitnet::kernels
