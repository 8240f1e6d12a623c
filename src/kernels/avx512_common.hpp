// Internal: what the AVX-512 and AMX translation units share (both are compiled with at least
// the AVX-512 flags). Internal linkage for the reason given in kernel_common.hpp.
// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves (GCC bug 105593),
// which -Wuninitialized reports at every use; the headers are correct.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif

#include <cstdint>

#include "kernels/avx2_common.hpp"
#include "kernels/kernel_common.hpp"

namespace bitnet::kernels {
namespace {

inline __m512i load512(const void* p) {
  return _mm512_loadu_si512(p);
}

// The panel of the I2_S gemm's tiles (kernel_common.hpp, i2s_gemm_panels): 32 rows, a step
// being two 64-byte vectors of 16 rows × 4 codes each, and the rescale of a tile's sums.
struct I2sPanel {
  static constexpr int64_t kRows = 32;

  // Rows i and i + 8 of 16 (the 32 packed bytes of one block each) are transposed as 8×8
  // dwords in both 256-bit halves, so vector d holds packed dword d of the 16 rows in
  // order; its four 2-bit fields are the codes of steps d, 8 + d, 16 + d and 24 + d (the
  // I2_S byte j holds inputs j, 32 + j, 64 + j and 96 + j from the top bits down).
  static constexpr int kPackRows = 16;
  static void pack_rows(const uint8_t* const* rows, int64_t b, int8_t* dst) {
    __m512i x[8];
    for (int i = 0; i < 8; ++i)
      x[i] = _mm512_inserti64x4(_mm512_castsi256_si512(load256(rows[i] + b * 32)),
                                load256(rows[i + 8] + b * 32), 1);
    __m512i lo[4], hi[4];
    for (int i = 0; i < 4; ++i) {
      lo[i] = _mm512_unpacklo_epi32(x[2 * i], x[2 * i + 1]);
      hi[i] = _mm512_unpackhi_epi32(x[2 * i], x[2 * i + 1]);
    }
    // rows 0-3 (c) and 4-7 (e) of dwords j and 4 + j, per 128-bit lane
    const __m512i c[4] = {_mm512_unpacklo_epi64(lo[0], lo[1]), _mm512_unpackhi_epi64(lo[0], lo[1]),
                          _mm512_unpacklo_epi64(hi[0], hi[1]), _mm512_unpackhi_epi64(hi[0], hi[1])};
    const __m512i e[4] = {_mm512_unpacklo_epi64(lo[2], lo[3]), _mm512_unpackhi_epi64(lo[2], lo[3]),
                          _mm512_unpacklo_epi64(hi[2], hi[3]), _mm512_unpackhi_epi64(hi[2], hi[3])};
    const __m512i first = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
    const __m512i second = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    __m512i y[8];
    for (int j = 0; j < 4; ++j) {
      y[j] = _mm512_permutex2var_epi64(c[j], first, e[j]);
      y[j + 4] = _mm512_permutex2var_epi64(c[j], second, e[j]);
    }
    const __m512i mask = _mm512_set1_epi8(3);
    for (int d = 0; d < 8; ++d) {
      _mm512_storeu_si512(dst + (d)*kRows * 4, _mm512_and_si512(_mm512_srli_epi16(y[d], 6), mask));
      _mm512_storeu_si512(dst + (8 + d) * kRows * 4,
                          _mm512_and_si512(_mm512_srli_epi16(y[d], 4), mask));
      _mm512_storeu_si512(dst + (16 + d) * kRows * 4,
                          _mm512_and_si512(_mm512_srli_epi16(y[d], 2), mask));
      _mm512_storeu_si512(dst + (24 + d) * kRows * 4, _mm512_and_si512(y[d], mask));
    }
  }

  // i2s_rescale on 16 lanes: the same float operations in the same order.
  static void store(const int32_t* sums, int rows, int32_t act_sum, float act_scale, float w_scale,
                    float* out) {
    const __m512 vsum = _mm512_set1_ps(static_cast<float>(act_sum));
    const __m512 vact = _mm512_set1_ps(act_scale);
    const __m512 vw = _mm512_set1_ps(w_scale);
    for (int j = 0; j < rows; j += 16) {
      const __m512 f = _mm512_cvtepi32_ps(load512(sums + j));
      const __mmask16 m =
          rows - j >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << (rows - j)) - 1);
      _mm512_mask_storeu_ps(out + j, m,
                            _mm512_mul_ps(_mm512_div_ps(_mm512_sub_ps(f, vsum), vact), vw));
    }
  }
};

} // namespace
} // namespace bitnet::kernels
