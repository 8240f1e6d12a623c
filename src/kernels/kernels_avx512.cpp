// AVX-512 F+BW+VL+VNNI kernels (compiled with BITNET_FLAGS_AVX512; used only on CPUs that
// have them). The I2_S dot product is vpdpbusd: unsigned codes 0..3 times signed int8
// activations, four products summed into each int32 lane without saturation, so the sums
// equal the scalar reference exactly. Entries not worth widening come from the AVX2 table.
// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves (GCC bug 105593),
// which -Wuninitialized reports at every use; the headers are correct.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif

#include "kernels/avx2_common.hpp"
#include "kernels/kernel_common.hpp"
#include "kernels/variants.hpp"

namespace bitnet::kernels {
namespace {

inline __m512i load512(const void* p) {
  return _mm512_loadu_si512(p);
}

// Σ code·q of nb packed I2_S blocks at w against the activations at q (a row of the gemv).
// A block's 32 bytes are broadcast to both 256-bit halves and shifted by (6 | 4) and
// (2 | 0): the low half then holds the codes of elements j, the high half those of 32 + j
// (resp. 64 + j and 96 + j), i.e. the codes of elements 0..63 and 64..127 in order, which
// line up with two plain 64-byte loads of the activations.
int32_t i2s_row_dot(const uint8_t* w, int64_t nb, const int8_t* q) {
  const __m512i mask = _mm512_set1_epi8(3);
  const __m512i shift_first = _mm512_inserti64x4(_mm512_set1_epi16(6), _mm256_set1_epi16(4), 1);
  const __m512i shift_second = _mm512_inserti64x4(_mm512_set1_epi16(2), _mm256_set1_epi16(0), 1);
  // vpdpbusd has a latency of several cycles: consecutive blocks go to separate
  // accumulator pairs so the chains overlap (integer sums: order is irrelevant).
  constexpr int kSets = 2;
  __m512i acc[kSets][2];
  for (auto& set : acc)
    set[0] = set[1] = _mm512_setzero_si512();
  const auto block = [&](int64_t b, __m512i(&a)[2]) {
    _mm_prefetch(reinterpret_cast<const char*>(w + b * 32 + kI2sPrefetchBytes), _MM_HINT_T0);
    const __m512i packed = _mm512_broadcast_i64x4(load256(w + b * 32));
    const __m512i c01 = _mm512_and_si512(_mm512_srlv_epi16(packed, shift_first), mask);
    const __m512i c23 = _mm512_and_si512(_mm512_srlv_epi16(packed, shift_second), mask);
    const int8_t* qb = q + b * kI2sBlock;
    a[0] = _mm512_dpbusd_epi32(a[0], c01, load512(qb));
    a[1] = _mm512_dpbusd_epi32(a[1], c23, load512(qb + 64));
  };
  int64_t b = 0;
  for (; b + kSets <= nb; b += kSets)
    for (int s = 0; s < kSets; ++s)
      block(b + s, acc[s]);
  for (; b < nb; ++b)
    block(b, acc[0]);
  __m512i total = _mm512_add_epi32(acc[0][0], acc[0][1]);
  for (int s = 1; s < kSets; ++s)
    total = _mm512_add_epi32(total, _mm512_add_epi32(acc[s][0], acc[s][1]));
  return _mm512_reduce_add_epi32(total);
}

void i2s_gemv(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1, const int8_t* q,
              float act_scale, int32_t act_sum, float* out) {
  for (int64_t r = r0; r < r1; ++r)
    out[r] =
        i2s_rescale(i2s_row_dot(w + r * (k / 4), k / kI2sBlock, q), act_sum, act_scale, w_scale);
}

// The gemm's register tile (kernel_common.hpp, i2s_gemm_panels): 32 rows (two zmm of 16
// rows × 4 codes) × 12 tokens. Per step, 2 panel loads and 12 broadcast loads feed 24
// vpdpbusd into 24 accumulators; with the 2 panel vectors and the broadcast that is 27 of
// the 32 zmm registers.
struct I2sTile {
  static constexpr int64_t kRows = 32;
  static constexpr int kTokens = 12;
  static constexpr int64_t kChunk = 512; // a 16 KiB panel

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

  template <int NT>
  static void dot(const int8_t* panel, int64_t kc, const int8_t* q, int64_t q_stride,
                  int32_t* sums) {
    __m512i acc[NT][2];
    for (int t = 0; t < NT; ++t)
      for (int v = 0; v < 2; ++v)
        acc[t][v] = load512(sums + t * kRows + 16 * v);
    for (int64_t s = 0; s < kc / 4; ++s) {
      const __m512i p0 = load512(panel + s * kRows * 4);
      const __m512i p1 = load512(panel + s * kRows * 4 + 64);
#pragma GCC unroll 12
      for (int t = 0; t < NT; ++t) {
        int32_t a;
        std::memcpy(&a, q + t * q_stride + 4 * s, sizeof a);
        const __m512i av = _mm512_set1_epi32(a);
        acc[t][0] = _mm512_dpbusd_epi32(acc[t][0], p0, av);
        acc[t][1] = _mm512_dpbusd_epi32(acc[t][1], p1, av);
      }
    }
    for (int t = 0; t < NT; ++t)
      for (int v = 0; v < 2; ++v)
        _mm512_storeu_si512(sums + t * kRows + 16 * v, acc[t][v]);
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

void i2s_gemm(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1, const int8_t* q,
              const float* act_scale, const int32_t* act_sum, int64_t n_tok, float* out,
              int64_t ld_out) {
  i2s_gemm_panels<I2sTile>(w, w_scale, k, r0, r1, q, act_scale, act_sum, n_tok, out, ld_out);
}

void quantize_act(const float* x, int64_t n, int8_t* q, float* scale_out, int32_t* sum_out) {
  __m512 vmax = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
  float fmax = _mm512_reduce_max_ps(vmax);
  for (; i < n; ++i) {
    const float a = x[i] < 0.0f ? -x[i] : x[i];
    fmax = a > fmax ? a : fmax;
  }
  const double max =
      static_cast<double>(fmax) > kActMinMax ? static_cast<double>(fmax) : kActMinMax;
  const float scale = act_scale_from_max(max);

  const __m512 vscale = _mm512_set1_ps(scale);
  const __m512i lo = _mm512_set1_epi32(-128);
  const __m512i hi = _mm512_set1_epi32(127);
  __m512i vsum = _mm512_setzero_si512();
  i = 0;
  for (; i + 16 <= n; i += 16) {
    // Default MXCSR rounding is to nearest even, the same as nearest_int.
    __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i), vscale));
    v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
    vsum = _mm512_add_epi32(vsum, v);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtepi32_epi8(v));
  }
  int32_t sum = _mm512_reduce_add_epi32(vsum);
  for (; i < n; ++i) {
    const int v = clamp_i8(nearest_int(x[i] * scale));
    q[i] = static_cast<int8_t>(v);
    sum += v;
  }
  *scale_out = scale;
  *sum_out = sum;
}

inline __m512 load_ph16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Σ w[i]·x[i] in ggml_vec_dot_f16's order (kernel_common.hpp): the reference's own code
// path, four 16-lane accumulators and _mm512_reduce_add_ps.
float f16_dot(const uint16_t* w, const uint16_t* x, int64_t k) {
  __m512 acc[4];
  for (__m512& a : acc)
    a = _mm512_setzero_ps();
  const int64_t np = k / kF16Chunk * kF16Chunk;
  for (int64_t i = 0; i < np; i += kF16Chunk)
    for (int j = 0; j < 4; ++j)
      acc[j] = _mm512_fmadd_ps(load_ph16(w + i + 16 * j), load_ph16(x + i + 16 * j), acc[j]);
  const __m512 v = _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]));
  return f16_dot_tail(_mm512_reduce_add_ps(v), w, x, np, k,
                      [](uint16_t h) { return _cvtsh_ss(h); });
}

// tinyBLAS order (kernels.hpp): the reference's own instructions.
float f16_f32_dot(const uint16_t* w, const float* x, int64_t k) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < k; i += 16)
    acc = _mm512_fmadd_ps(load_ph16(w + i), _mm512_loadu_ps(x + i), acc);
  return _mm512_reduce_add_ps(acc);
}

void f16_f32_gemm(const uint16_t* w, int64_t k, int64_t r0, int64_t r1, const float* x,
                  int64_t n_tok, float* out, int64_t ld_out) {
  f16_gemm_rows(f16_f32_dot, w, k, r0, r1, x, n_tok, out, ld_out);
}

void f16_gemm(const uint16_t* w, int64_t k, int64_t r0, int64_t r1, const uint16_t* x,
              int64_t n_tok, float* out, int64_t ld_out) {
  f16_gemm_rows(f16_dot, w, k, r0, r1, x, n_tok, out, ld_out);
}

// vpdpbusd (256-bit, VL) for AVX2's maddubs + madd: four products per int32 lane with no
// int16 step, the same exact sums.
void q8_0_gemm(const uint8_t* w, int64_t k, int64_t r0, int64_t r1, const uint8_t* xq,
               int64_t n_tok, float* out, int64_t ld_out) {
  q8_0_gemm_avx(
      [](__m256i uw, __m256i sx) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), uw, sx); }, w,
      k, r0, r1, xq, n_tok, out, ld_out);
}

Table make_table() {
  Table t = table_avx2();
  t.isa = Isa::avx512;
  t.quantize_act = quantize_act;
  t.i2s_gemv = i2s_gemv;
  t.i2s_gemm = i2s_gemm;
  t.f16_gemm = f16_gemm;
  t.f16_f32_dot = f16_f32_dot;
  t.f16_f32_gemm = f16_f32_gemm;
  t.f16_dot = f16_dot;
  t.q8_0_gemm = q8_0_gemm;
  return t;
}

} // namespace

const Table& table_avx512() {
  static const Table t = make_table();
  return t;
}

} // namespace bitnet::kernels
