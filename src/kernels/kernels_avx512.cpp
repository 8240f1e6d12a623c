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

// Adds to sums[t] the Σ code·q of nb packed I2_S blocks at w against token t's activations
// at q + t·q_stride, t < NT.
// A block's 32 bytes are broadcast to both 256-bit halves and shifted by (6 | 4) and
// (2 | 0): the low half then holds the codes of elements j, the high half those of 32 + j
// (resp. 64 + j and 96 + j), i.e. the codes of elements 0..63 and 64..127 in order, which
// line up with two plain 64-byte loads of the activations.
template <int NT>
void i2s_row_dot(const uint8_t* w, int64_t nb, const int8_t* q, int64_t q_stride, int32_t* sums) {
  const __m512i mask = _mm512_set1_epi8(3);
  const __m512i shift_first = _mm512_inserti64x4(_mm512_set1_epi16(6), _mm256_set1_epi16(4), 1);
  const __m512i shift_second = _mm512_inserti64x4(_mm512_set1_epi16(2), _mm256_set1_epi16(0), 1);
  // vpdpbusd has a latency of several cycles: with few tokens, consecutive blocks go to
  // separate accumulator sets so the chains overlap (integer sums: order is irrelevant).
  constexpr int kSets = NT <= 2 ? 2 : 1;
  __m512i acc[kSets][NT][2];
  for (auto& set : acc)
    for (auto& tok : set)
      tok[0] = tok[1] = _mm512_setzero_si512();
  const auto block = [&](int64_t b, __m512i(&a)[NT][2]) {
    if constexpr (NT == 1)
      _mm_prefetch(reinterpret_cast<const char*>(w + b * 32 + kI2sPrefetchBytes), _MM_HINT_T0);
    const __m512i packed = _mm512_broadcast_i64x4(load256(w + b * 32));
    const __m512i c01 = _mm512_and_si512(_mm512_srlv_epi16(packed, shift_first), mask);
    const __m512i c23 = _mm512_and_si512(_mm512_srlv_epi16(packed, shift_second), mask);
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const int8_t* qb = q + t * q_stride + b * kI2sBlock;
      a[t][0] = _mm512_dpbusd_epi32(a[t][0], c01, load512(qb));
      a[t][1] = _mm512_dpbusd_epi32(a[t][1], c23, load512(qb + 64));
    }
  };
  int64_t b = 0;
  for (; b + kSets <= nb; b += kSets)
    for (int s = 0; s < kSets; ++s)
      block(b + s, acc[s]);
  for (; b < nb; ++b)
    block(b, acc[0]);
  for (int t = 0; t < NT; ++t) {
    __m512i total = _mm512_add_epi32(acc[0][t][0], acc[0][t][1]);
    for (int s = 1; s < kSets; ++s)
      total = _mm512_add_epi32(total, _mm512_add_epi32(acc[s][t][0], acc[s][t][1]));
    sums[t] += _mm512_reduce_add_epi32(total);
  }
}

void i2s_gemv(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1, const int8_t* q,
              float act_scale, int32_t act_sum, float* out) {
  for (int64_t r = r0; r < r1; ++r) {
    int32_t sum = 0;
    i2s_row_dot<1>(w + r * (k / 4), k / kI2sBlock, q, k, &sum);
    out[r] = i2s_rescale(sum, act_sum, act_scale, w_scale);
  }
}

void i2s_gemm(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1, const int8_t* q,
              const float* act_scale, const int32_t* act_sum, int64_t n_tok, float* out,
              int64_t ld_out) {
  i2s_gemm_tiled<kI2sTileTokens>(
      [](auto nt, auto... args) { i2s_row_dot<decltype(nt)::value>(args...); }, w, w_scale, k, r0,
      r1, q, act_scale, act_sum, n_tok, out, ld_out);
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
