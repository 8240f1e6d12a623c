// AVX2 + FMA + F16C kernels (compiled with BITNET_FLAGS_AVX2; used only on CPUs that have them).
// Integer results equal the scalar reference and float results are bit-identical to it
// (the same operations in the same order).
#include <cmath>
#include <type_traits>

#include <immintrin.h>

#include "kernels/avx2_common.hpp"
#include "kernels/kernel_common.hpp"
#include "kernels/variants.hpp"
#include "kernels/vec_ops.hpp"

namespace bitnet::kernels {
namespace {

// The gemv's int16 partial sums are widened to int32 every kFlushBlocks blocks. Per block
// a lane gains at most 4 maddubs pairs of |code·q| ≤ 3·128, i.e. 3072, so 8 blocks stay
// below 32767 even for the never-written code 3.
constexpr int64_t kFlushBlocks = 8;

// acc += codes·act, two products per int16 lane (vpmaddubsw, then vpaddw). Through asm: GCC 12
// adds into a fresh register and copies it back, and spills with many accumulators. "xm": the
// activations may be read by the instruction itself.
inline void maddubs_add(__m256i& acc, __m256i codes, __m256i act) {
  __m256i product;
  __asm__("vpmaddubsw %[act], %[codes], %[product]\n\t"
          "vpaddw %[product], %[acc], %[acc]"
          : [acc] "+x"(acc), [product] "=&x"(product)
          : [codes] "x"(codes), [act] "xm"(act));
}

// Σ code·q of NR rows (row r's packed I2_S blocks at w[r], k inputs) against NT tokens'
// activations (token t's at q + t·k; row r, token t to sums[r·NT + t]).
// - One token (the gemv's streams, kGemvStreams rows at a time): on one core decode is bound by
//   this unpack-and-multiply work about as much as by memory, and the rows share each
//   activation load.
// - A few (a server's batched decode step, two rows per call): each row's codes are unpacked
//   once for all tokens, the activations read by the multiplies themselves; the NR·NT int16
//   accumulators, a code vector, the packed bytes and the mask are at most 12 ymm.
// Not inlined, as the AVX-VNNI and AVX-512 rows: inlined into i2s_gemm, GCC spilled the int16
// accumulators of 2 rows x 4 tokens in the inner loop (objdump); out of line it ran 1.04-1.17x
// faster (bench_kernels i2s_gemm n=4, 3 alternations).
template <int NR, int NT>
__attribute__((noinline)) void i2s_rows_dot(const uint8_t* const* w, int64_t k, const int8_t* q,
                                            int32_t* sums) {
  const __m256i mask = _mm256_set1_epi8(3);
  const __m256i ones = _mm256_set1_epi16(1);
  const int64_t nb = k / kI2sBlock;
  __m256i acc32[NR][NT];
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
    for (int t = 0; t < NT; ++t)
      acc32[r][t] = _mm256_setzero_si256();
  for (int64_t b0 = 0; b0 < nb; b0 += kFlushBlocks) {
    const int64_t b1 = b0 + kFlushBlocks < nb ? b0 + kFlushBlocks : nb;
    __m256i acc16[NR][NT];
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
      for (int t = 0; t < NT; ++t)
        acc16[r][t] = _mm256_setzero_si256();
    for (int64_t b = b0; b < b1; ++b) {
      if constexpr (NT == 1) {
        const int8_t* qb = q + b * kI2sBlock;
        const __m256i q0 = load256(qb), q1 = load256(qb + 32), q2 = load256(qb + 64),
                      q3 = load256(qb + 96);
        for (int r = 0; r < NR; ++r) {
          const uint8_t* wb = w[r] + b * 32;
          _mm_prefetch(reinterpret_cast<const char*>(wb + kI2sPrefetchBytes), _MM_HINT_T0);
          const __m256i packed = load256(wb);
          const __m256i s01 = _mm256_add_epi16(
              _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(packed, 6), mask), q0),
              _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(packed, 4), mask), q1));
          const __m256i s23 = _mm256_add_epi16(
              _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(packed, 2), mask), q2),
              _mm256_maddubs_epi16(_mm256_and_si256(packed, mask), q3));
          acc16[r][0] = _mm256_add_epi16(acc16[r][0], _mm256_add_epi16(s01, s23));
        }
      } else {
        i2s_block_rows_tokens<NR, NT>(w, b, q, k,
                                      [&](int r, int t, int, __m256i codes, __m256i act) {
                                        maddubs_add(acc16[r][t], codes, act);
                                      });
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
      for (int t = 0; t < NT; ++t)
        acc32[r][t] = _mm256_add_epi32(acc32[r][t], _mm256_madd_epi16(acc16[r][t], ones));
  }
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
    for (int t = 0; t < NT; ++t)
      sums[r * NT + t] = hsum_i32(acc32[r][t]);
}

void i2s_gemv(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1, const int8_t* q,
              float act_scale, int32_t act_sum, float* out) {
  i2s_gemv_streams([&](auto nr, const uint8_t* const* rows,
                       int32_t* sums) { i2s_rows_dot<decltype(nr)::value, 1>(rows, k, q, sums); },
                   w, w_scale, k, r0, r1, act_scale, act_sum, out);
}

// The gemm's multiply step (avx2_common.hpp, I2sTile256). vpmaddubsw sums two code·q
// products into each int16 lane: with codes 0..2 and |q| <= 128 that is within [-512, 508]
// per step, so 64 steps (256 inputs) stay within [-32768, 32512]; with the never-written
// code 3 within ±768, so 32 steps. A widening (vpmaddwd and an add into the int32 sums)
// costs as much as a step of a token: the longer chunk halves them. 5 tokens: 10
// accumulators + 2 panel vectors + the broadcast + the product = 14 ymm registers
// (maddubs_add keeps each accumulator in place; plain intrinsics spill with 12).
struct Maddubs {
  static constexpr int kTokens = 5;
  static constexpr int64_t kChunk = 256;
  static constexpr int64_t kChunk3 = 128;
  static __m256i step(__m256i acc, __m256i codes, __m256i act) {
    maddubs_add(acc, codes, act);
    return acc;
  }
  static __m256i widen(__m256i acc) { return _mm256_madd_epi16(acc, _mm256_set1_epi16(1)); }
};

// A few tokens (a server's batched decode step) as rows of dots, two rows per call on the
// gemv's streams, as the AVX-VNNI gemm takes them; more through the panels.
void i2s_gemm(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1, const int8_t* q,
              const float* act_scale, const int32_t* act_sum, int64_t n_tok, float* out,
              int64_t ld_out) {
  i2s_gemm_rows_or_panels<I2sTile256<Maddubs>, 2>(
      [&](auto nr_c, auto nt_c, const uint8_t* const* rows, int32_t* sums) {
        i2s_rows_dot<decltype(nr_c)::value, decltype(nt_c)::value>(rows, k, q, sums);
      },
      w, w_scale, k, r0, r1, q, act_scale, act_sum, n_tok, out, ld_out);
}

void quantize_act(const float* x, int64_t n, int8_t* q, float* scale_out, int32_t* sum_out) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  // Four max chains (max is exact in any order): one would wait on vmaxps's latency.
  __m256 vmax[4];
  for (__m256& m : vmax)
    m = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 4; ++j)
      vmax[j] = _mm256_max_ps(vmax[j], _mm256_and_ps(_mm256_loadu_ps(x + i + 8 * j), abs_mask));
  for (; i + 8 <= n; i += 8)
    vmax[0] = _mm256_max_ps(vmax[0], _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask));
  float fmax =
      hmax_ps(_mm256_max_ps(_mm256_max_ps(vmax[0], vmax[1]), _mm256_max_ps(vmax[2], vmax[3])));
  for (; i < n; ++i) {
    const float a = x[i] < 0.0f ? -x[i] : x[i];
    fmax = a > fmax ? a : fmax;
  }
  const double max =
      static_cast<double>(fmax) > kActMinMax ? static_cast<double>(fmax) : kActMinMax;
  const float scale = act_scale_from_max(max);

  const __m256 vscale = _mm256_set1_ps(scale);
  const __m256i lo = _mm256_set1_epi32(-128);
  const __m256i hi = _mm256_set1_epi32(127);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  __m256i vsum = _mm256_setzero_si256();
  const auto quant8 = [&](const float* p) {
    // Default MXCSR rounding is to nearest even, the same as nearest_int.
    __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(p), vscale));
    v = _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
    vsum = _mm256_add_epi32(vsum, v);
    return v;
  };
  i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i a = quant8(x + i), b = quant8(x + i + 8), c = quant8(x + i + 16),
                  d = quant8(x + i + 24);
    const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i),
                        _mm256_permutevar8x32_epi32(packed, order));
  }
  int32_t sum = hsum_i32(vsum);
  for (; i < n; ++i) {
    const int v = clamp_i8(nearest_int(x[i] * scale));
    q[i] = static_cast<int8_t>(v);
    sum += v;
  }
  *scale_out = scale;
  *sum_out = sum;
}

// ggml's rms_norm (kernels_scalar.cpp rmsnorm), a row at a time: its Σ (double)(x·x) in 16
// interleaved chains (four vectors of 4 doubles), then rms_mean. A single row (decoding) no
// longer waits on one add latency per element.
void rmsnorm(const float* x, int64_t n_rows, const float* weight, int64_t n, float eps,
             float* out) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* xr = x + r * n;
    __m256d c[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                    _mm256_setzero_pd()};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      for (int h = 0; h < 2; ++h) {
        const __m256 v = _mm256_loadu_ps(xr + i + 8 * h);
        const __m256 sq = _mm256_mul_ps(v, v);
        c[2 * h] = _mm256_add_pd(c[2 * h], _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
        c[2 * h + 1] = _mm256_add_pd(c[2 * h + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
      }
    const __m256d c4 = _mm256_add_pd(_mm256_add_pd(c[0], c[1]), _mm256_add_pd(c[2], c[3]));
    const __m128d c2 = _mm_add_pd(_mm256_castpd256_pd128(c4), _mm256_extractf128_pd(c4, 1));
    double sum = _mm_cvtsd_f64(_mm_add_sd(c2, _mm_unpackhi_pd(c2, c2)));
    for (; i < n; ++i)
      sum += static_cast<double>(xr[i] * xr[i]);
    const float mean = rms_mean(sum, xr, n);
    const float scale = 1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(mean + eps)));
    float* orow = out + r * n;
    const __m256 vs = _mm256_set1_ps(scale);
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
      _mm256_storeu_ps(orow + k, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + k), vs),
                                               _mm256_loadu_ps(weight + k)));
    for (; k < n; ++k)
      orow[k] = (xr[k] * scale) * weight[k];
  }
}

// 8 f16 or f32 values as floats.
inline __m256 load8(const uint16_t* p) {
  return load_ph(p);
}
inline __m256 load8(const float* p) {
  return _mm256_loadu_ps(p);
}

// Σ w[i]·x[i] in ggml_vec_dot_f16's order (kernel_common.hpp), so the head's logits equal
// the reference's bit for bit: acc[2q + h] holds lanes 8h..8h+7 of accumulator q. x is f16, or
// f32 for f16_dots (the products fused into the lanes either way).
// The eight accumulators of one dot joined as ggml joins its four (a0 + a2) + (a1 + a3), and
// their two halves added (the first halving step of the 16-lane reduction).
inline __m256 join_lanes(const __m256* acc) {
  const __m256 lo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
  const __m256 hi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
  return _mm256_add_ps(lo, hi);
}

template <class X> float ggml_f16_dot(const uint16_t* w, const X* x, int64_t k) {
  __m256 acc[8];
  for (__m256& a : acc)
    a = _mm256_setzero_ps();
  const int64_t np = k / kF16Chunk * kF16Chunk;
  for (int64_t i = 0; i < np; i += kF16Chunk) {
    _mm_prefetch(reinterpret_cast<const char*>(w + i + kF16PrefetchHalves), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w + i + 32 + kF16PrefetchHalves), _MM_HINT_T0);
    for (int j = 0; j < 8; ++j)
      acc[j] = _mm256_fmadd_ps(load_ph(w + i + 8 * j), load8(x + i + 8 * j), acc[j]);
  }
  return f16_dot_tail(hsum_ps(join_lanes(acc)), w, x, np, k,
                      [](uint16_t h) { return _cvtsh_ss(h); });
}

float f16_dot(const uint16_t* w, const uint16_t* x, int64_t k) {
  return ggml_f16_dot(w, x, k);
}

// tinyBLAS order (kernels.hpp): lanes 0..7 in lo, 8..15 in hi.
float f16_f32_dot(const uint16_t* w, const float* x, int64_t k) {
  __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
  for (int64_t i = 0; i < k; i += 16) {
    lo = _mm256_fmadd_ps(load_ph(w + i), _mm256_loadu_ps(x + i), lo);
    hi = _mm256_fmadd_ps(load_ph(w + i + 8), _mm256_loadu_ps(x + i + 8), hi);
  }
  return hsum_ps(_mm256_add_ps(lo, hi));
}

void f32_to_f16(const float* x, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i)
    out[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

void f16_to_f32(const uint16_t* x, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, load_ph(x + i));
  for (; i < n; ++i)
    out[i] = _cvtsh_ss(x[i]);
}

void quantize_q8_0(const float* x, int64_t n, uint8_t* out) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const float* xb = x + b * kQ8Block;
    __m256 v[4];
    __m256 vmax = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(xb + 8 * j);
      vmax = _mm256_max_ps(vmax, _mm256_and_ps(v[j], abs_mask));
    }
    const float amax = hmax_ps(vmax);
    const uint16_t d = _cvtss_sh(q8_d(amax), _MM_FROUND_TO_NEAREST_INT);
    const __m256 id = _mm256_set1_ps(q8_id(amax));
    __m256i iv[4];
    for (int j = 0; j < 4; ++j)
      iv[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], id));
    // Saturating packs clamp to [-128, 127] like the scalar clamp.
    const __m256i packed =
        _mm256_packs_epi16(_mm256_packs_epi32(iv[0], iv[1]), _mm256_packs_epi32(iv[2], iv[3]));
    uint8_t* ob = out + b * kQ8BlockBytes;
    std::memcpy(ob, &d, sizeof d);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ob + 2),
                        _mm256_permutevar8x32_epi32(packed, order));
  }
}

// ggml's integer step: maddubs, then madd into the 8 sums of 4.
void q8_0_gemm(const uint8_t* w, int64_t k, int64_t r0, int64_t r1, const uint8_t* xq,
               int64_t n_tok, float* out, int64_t ld_out) {
  const __m256i ones = _mm256_set1_epi16(1);
  q8_0_gemm_avx(
      [&](__m256i uw, __m256i sx) { return _mm256_madd_epi16(_mm256_maddubs_epi16(uw, sx), ones); },
      w, k, r0, r1, xq, n_tok, out, ld_out);
}

// The screen's dot by the same sign trick: |x| times q with x's sign, in int16 pairs (at
// most 2·127·127, since neither q nor x is -128), then madd into int32. Four tokens per pass
// (a batched step of 4 reads the screen once) against two: bench_kernels q8_0_screen n=4,
// 3 alternations, 1.16-1.33x at 1 thread and 1.10-1.21x at 2.
struct ScreenLanesAvx2 : ScreenLanes8 {
  static constexpr int kTokens = 4;
  static constexpr int kBatchStreams = 1;
  static constexpr bool kOffset = false;
  static __m256i dot(__m256i acc, __m256i w, const int8_t* x4) {
    const __m256i x = bcast(x4);
    const __m256i q = _mm256_xor_si256(w, _mm256_set1_epi8(static_cast<char>(0x80)));
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(q, x));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
};

void q8_0_to_f32(const uint8_t* x, int64_t n, float* out) {
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const uint8_t* xb = x + b * kQ8BlockBytes;
    const __m256 d = _mm256_set1_ps(q8_block_scale(xb));
    for (int j = 0; j < 4; ++j) {
      const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(xb + 2 + 8 * j));
      const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8));
      _mm256_storeu_ps(out + b * kQ8Block + 8 * j, _mm256_mul_ps(v, d));
    }
  }
}

// The vector ops of the float kernels (vec_ops.hpp) on 8 lanes.
struct Vec8 {
  using F = __m256;
  static constexpr int kLanes = 8;
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F set1(float f) { return _mm256_set1_ps(f); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F fmsub(F a, F b, F c) { return _mm256_fmsub_ps(a, b, c); }
  static F fnmadd(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
  // maxps returns its second operand when either is NaN.
  static F relu(F v) { return _mm256_max_ps(v, _mm256_setzero_ps()); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static float hmax(F v) { return hmax_ps(v); }
  static float sum16(const F* e) { return hsum_ps(_mm256_add_ps(e[0], e[1])); }
  static void chunk_sums(const float* x, float* sums);
  static F round_f16(F v) { return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT)); }
  static F expf(F x);
};

// ggml_expf (kernels_scalar.cpp) on 8 lanes: its steps (exp_steps), then j·2^n as
// j·2^a·2^b, a = n/2 truncated: one rounding (kernel_common.hpp pow2_float).
__m256 Vec8::expf(__m256 x) {
  __m256 n;
  const __m256 j = exp_steps<Vec8>(x, n);
  const __m256i ni = _mm256_cvttps_epi32(n);
  const __m256i a = _mm256_srai_epi32(_mm256_add_epi32(ni, _mm256_srli_epi32(ni, 31)),
                                      1); // ni / 2, truncated toward zero as in C
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 pa = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(a, bias), 23));
  const __m256 pb =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, a), bias), 23));
  __m256 res = _mm256_mul_ps(_mm256_mul_ps(j, pa), pb);
  const __m256 abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
  const __m256 big = _mm256_cmp_ps(abs_n, _mm256_set1_ps(192.0f), _CMP_GT_OQ);
  const __m256 sat = _mm256_blendv_ps(_mm256_set1_ps(INFINITY), _mm256_setzero_ps(),
                                      _mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ));
  res = _mm256_blendv_ps(res, sat, big);
  return _mm256_blendv_ps(res, n, _mm256_cmp_ps(n, n, _CMP_UNORD_Q));
}

// ---- attention ---------------------------------------------------------------------------

// One pass of f16_dots over row a against NX vectors, elements [k0, k1): acc[i][h] += products
// of lane group J + 4h (ggml_f16_dot's acc[J + 4h]: elements 8(J + 4h).. of each chunk of 64)
// with vector i. A dot's eight accumulators for NX vectors do not fit the sixteen registers, so
// the chunks are gone through in four passes, J = 0..3 (a lane's sum is the same in any pass
// order: lanes meet only in the join). Each chunk of the row is converted once for all NX
// vectors; pass 0 prefetches as dots_prefetch_at says. J is a constant and the chunks go two at
// a time, so a chunk costs its two conversions and 2·NX FMAs with little else (the loop counts
// and the prefetch test had cost as many instructions again).
template <int NX, int J>
inline void f16_pass(const uint16_t* a, const uint16_t* next, int64_t np, const float* x,
                     int64_t ldx, int64_t k0, int64_t k1, __m256 (*acc)[2]) {
  __m256 c[NX][2]; // in registers over the pass
  for (int i = 0; i < NX; ++i)
    for (int h = 0; h < 2; ++h)
      c[i][h] = acc[i][h];
  const auto chunk = [&](int64_t k) {
    if constexpr (J == 0) {
      if (const uint16_t* p = dots_prefetch_at(a, next, np, k)) {
        _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(p + 32), _MM_HINT_T0);
      }
    }
    const __m256 av[2] = {load_ph(a + k + 8 * J), load_ph(a + k + 8 * J + 32)};
    for (int i = 0; i < NX; ++i)
      for (int h = 0; h < 2; ++h)
        c[i][h] =
            _mm256_fmadd_ps(av[h], _mm256_loadu_ps(x + i * ldx + k + 8 * J + 32 * h), c[i][h]);
  };
  int64_t k = k0;
  for (; k + 2 * kF16Chunk <= k1; k += 2 * kF16Chunk) {
    chunk(k);
    chunk(k + kF16Chunk);
  }
  if (k < k1) chunk(k);
  for (int i = 0; i < NX; ++i)
    for (int h = 0; h < 2; ++h)
      acc[i][h] = c[i][h];
}

// pass(std::integral_constant<int, J>{}) for J = 0..3 (f16_pass's lane groups), in order.
template <class Pass> inline void for_passes(Pass pass) {
  pass(std::integral_constant<int, 0>{});
  pass(std::integral_constant<int, 1>{});
  pass(std::integral_constant<int, 2>{});
  pass(std::integral_constant<int, 3>{});
}

// ggml_f16_dot's accumulators of row a against NX vectors, continued over elements [k0, k1):
// sums[i][g] += products of lane group g with vector i (a span of a longer row, V·p).
template <int NX>
inline void f16_lanes(const uint16_t* a, const uint16_t* next, int64_t np, const float* x,
                      int64_t ldx, int64_t k0, int64_t k1, __m256 (*sums)[8]) {
  for_passes([&](auto j) {
    __m256 acc[NX][2];
    for (int i = 0; i < NX; ++i)
      for (int h = 0; h < 2; ++h)
        acc[i][h] = sums[i][j + 4 * h];
    f16_pass<NX, j>(a, next, np, x, ldx, k0, k1, acc);
    for (int i = 0; i < NX; ++i)
      for (int h = 0; h < 2; ++h)
        sums[i][j + 4 * h] = acc[i][h];
  });
}

// The joined dots (join_lanes) of row a with NX vectors (u[i·ldu]: vector i) when the row is
// one span (K·q): each pass from zero, its two groups added at once (t_j = group j + group
// j + 4), nothing through memory. The join (t0 + t2) + (t1 + t3) is taken as its operands come,
// passes 0, 2, 1, 3, so that no more than two of the t are live beside a pass's accumulators.
template <int NX>
inline void f16_row_joined(const uint16_t* a, const uint16_t* next, int64_t np, const float* x,
                           int64_t ldx, __m256* u, int64_t ldu) {
  const auto pass = [&](auto j, __m256* t) {
    __m256 acc[NX][2];
    for (auto& ax : acc)
      ax[0] = ax[1] = _mm256_setzero_ps();
    f16_pass<NX, j>(a, next, np, x, ldx, 0, np, acc);
    for (int i = 0; i < NX; ++i)
      t[i] = _mm256_add_ps(acc[i][0], acc[i][1]);
  };
  __m256 t02[NX], t13[NX], t[NX];
  pass(std::integral_constant<int, 0>{}, t02);
  pass(std::integral_constant<int, 2>{}, t);
  for (int i = 0; i < NX; ++i)
    t02[i] = _mm256_add_ps(t02[i], t[i]);
  pass(std::integral_constant<int, 1>{}, t13);
  pass(std::integral_constant<int, 3>{}, t);
  for (int i = 0; i < NX; ++i)
    u[i * ldu] = _mm256_add_ps(t02[i], _mm256_add_ps(t13[i], t[i]));
}

// The last three halving steps of eight joined dots at once, each as hsum_ps adds its lanes
// (l + l+4, l + l+2, l + l+1): lane d of the result is the sum of v[d].
inline __m256 reduce8(const __m256* v) {
  __m256 u[4], z[2];
  for (int d = 0; d < 4; ++d) // l + l+4: v[d] in lanes 0-3, v[d + 4] in 4-7
    u[d] = _mm256_add_ps(_mm256_permute2f128_ps(v[d], v[d + 4], 0x20),
                         _mm256_permute2f128_ps(v[d], v[d + 4], 0x31));
  for (int k = 0; k < 2; ++k) { // l + l+2: halves hold v[2k], v[2k + 1], then v[2k + 4], v[2k + 5]
    const __m256d a = _mm256_castps_pd(u[2 * k]), b = _mm256_castps_pd(u[2 * k + 1]);
    z[k] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(a, b)),
                         _mm256_castpd_ps(_mm256_unpackhi_pd(a, b)));
  }
  // l + l+1: halves hold v[0..3], then v[4..7]
  return _mm256_add_ps(_mm256_shuffle_ps(z[0], z[1], 0x88), _mm256_shuffle_ps(z[0], z[1], 0xDD));
}

// sum16's first step (l + l+8) of each chunk, then reduce8's (hsum_ps's) of eight at a time.
void Vec8::chunk_sums(const float* x, float* sums) {
  __m256 u[16];
  for (int c = 0; c < 16; ++c)
    u[c] = _mm256_add_ps(_mm256_loadu_ps(x + 16 * c), _mm256_loadu_ps(x + 16 * c + 8));
  _mm256_storeu_ps(sums, reduce8(u));
  _mm256_storeu_ps(sums + 8, reduce8(u + 8));
}

// Adds the leftover products k in [np, n) of a block's 16 dots (s[q / 2], lane 4(q % 2) + m:
// row m, vector q) to their reduced heads in double, each product rounded to float first
// (f16_dot_tail's sums, four dots per vector). The four rows' halves are converted 8 at a time
// and transposed to one column per k (V·p at depth 2048 has 32 leftover elements per row).
inline void add_tails16(__m256* s, const uint16_t* a, int64_t lda, const float* x, int64_t ldx,
                        int64_t np, int64_t n) {
  __m256d sum[4];
  for (int q = 0; q < 4; ++q)
    sum[q] = _mm256_cvtps_pd(q % 2 ? _mm256_extractf128_ps(s[q / 2], 1)
                                   : _mm256_castps256_ps128(s[q / 2]));
  const auto add = [&](__m128 ak, int64_t k) { // ak: rows 0-3 at k
    for (int q = 0; q < 4; ++q)
      sum[q] = _mm256_add_pd(sum[q], _mm256_cvtps_pd(_mm_mul_ps(ak, _mm_set1_ps(x[q * ldx + k]))));
  };
  int64_t k = np;
  for (; k + 8 <= n; k += 8) {
    const __m256 r0 = load_ph(a + k), r1 = load_ph(a + lda + k), r2 = load_ph(a + 2 * lda + k),
                 r3 = load_ph(a + 3 * lda + k);
    const __m256 lo01 = _mm256_unpacklo_ps(r0, r1), hi01 = _mm256_unpackhi_ps(r0, r1);
    const __m256 lo23 = _mm256_unpacklo_ps(r2, r3), hi23 = _mm256_unpackhi_ps(r2, r3);
    const __m256 c[4] = {_mm256_shuffle_ps(lo01, lo23, 0x44), _mm256_shuffle_ps(lo01, lo23, 0xEE),
                         _mm256_shuffle_ps(hi01, hi23, 0x44), _mm256_shuffle_ps(hi01, hi23, 0xEE)};
    for (int j = 0; j < 4; ++j) // c[j]: column k + j in the low lane, k + 4 + j in the high
      add(_mm256_castps256_ps128(c[j]), k + j);
    for (int j = 0; j < 4; ++j)
      add(_mm256_extractf128_ps(c[j], 1), k + 4 + j);
  }
  for (; k < n; ++k)
    add(_mm_setr_ps(_cvtsh_ss(a[k]), _cvtsh_ss(a[lda + k]), _cvtsh_ss(a[2 * lda + k]),
                    _cvtsh_ss(a[3 * lda + k])),
        k);
  for (int h = 0; h < 2; ++h)
    s[h] = _mm256_set_m128(_mm256_cvtpd_ps(sum[2 * h + 1]), _mm256_cvtpd_ps(sum[2 * h]));
}

// Stores a block's 16 dots (s[q / 2], lane 4(q % 2) + m: row m, vector q) to
// out[q·ld_out + m].
inline void store_block16(const __m256* s, float* out, int64_t ld_out) {
  for (int q = 0; q < 4; ++q)
    _mm_storeu_ps(out + q * ld_out,
                  q % 2 ? _mm256_extractf128_ps(s[q / 2], 1) : _mm256_castps256_ps128(s[q / 2]));
}

// The AVX-512 f16_dots' blocks of 4 rows × 4 vectors, spans and prefetches, in f16_pass's
// passes: each row chunk is converted once for four vectors and the 16 dots are reduced
// together. Rows of one span (K·q) skip the accumulators in memory (f16_row_joined).
void f16_dots(const uint16_t* a, int64_t lda, int64_t n_rows, const float* x, int64_t ldx,
              int64_t n_x, int64_t n, float* out, int64_t ld_out) {
  const int64_t np = n / kF16Chunk * kF16Chunk;
  dots_blocked(
      [&](int64_t r, int64_t i, float* o) {
        const uint16_t* ar = a + r * lda;
        const float* xi = x + i * ldx;
        __m256 v[16]; // v[4q + m]: row m, vector q
        if (np <= kDotsSpan) {
          for (int m = 0; m < 4; ++m)
            f16_row_joined<4>(ar + m * lda, ar + (m + 4) * lda, np, xi, ldx, v + m, 4);
        } else {
          __m256 acc[4][4][8]; // [row][vector][accumulator]
          for (auto& row : acc)
            for (auto& ax : row)
              for (__m256& c : ax)
                c = _mm256_setzero_ps();
          for_block_spans<4>(np, kDotsSpan, [&](int m, int64_t k0, int64_t k1) {
            f16_lanes<4>(ar + m * lda, ar + (m + 4) * lda, np, xi, ldx, k0, k1, acc[m]);
          });
          for (int m = 0; m < 4; ++m)
            for (int q = 0; q < 4; ++q)
              v[4 * q + m] = join_lanes(acc[m][q]);
        }
        __m256 s[2] = {reduce8(v), reduce8(v + 8)};
        if (np < n) add_tails16(s, ar, lda, xi, ldx, np, n);
        store_block16(s, o, ld_out);
      },
      [&](int64_t r, int64_t i) { return ggml_f16_dot(a + r * lda, x + i * ldx, n); }, n_rows, n_x,
      out, ld_out);
}

// head_dots_by_keys' blocks: a key's part of a head of whole chunks, at most one span long,
// through f16_row_joined.
struct KeyBlock {
  __m256 v[16]; // v[4q + m]: key m, vector q
  void add(int m, const uint16_t* key, const uint16_t* below, const float* x, int64_t n) {
    f16_row_joined<4>(key, below, n, x, n, v + m, 4);
  }
  void store(float* o, int64_t ld_out) const {
    const __m256 s[2] = {reduce8(v), reduce8(v + 8)};
    store_block16(s, o, ld_out);
  }
};

void head_dots(const uint16_t* k, int64_t ldk, int64_t n_keys, int64_t n_head_kv, int64_t group,
               const float* x, int64_t n, float* out, int64_t ld_out) {
  head_dots_by_keys<KeyBlock, f16_dots>(n % kF16Chunk == 0 && n <= kDotsSpan, k, ldk, n_keys,
                                        n_head_kv, group, x, n, out, ld_out);
}

// tinyBLAS order (f16_f32_dot: lanes 0-7 and 8-15 in two accumulators) of R rows with four
// vectors, R/4 blocks stored to out + 4b, each converted row vector used by all four vectors. A
// dot's two accumulators for four vectors fill half the registers, so the rows take turns over
// kDotsSpan elements at a time (each dot's sums in the same order), the vectors' span staying in
// L1 for all R rows: a row at a time, V·p at long contexts read the vectors from L2 once per row
// and waited on it.
template <int R>
inline void f32_rows(const uint16_t* ar, int64_t lda, const float* xi, int64_t ldx, int64_t n,
                     float* out, int64_t ld_out) {
  __m256 acc[R][4][2]; // [row][vector][lanes 0-7, 8-15]
  for (auto& row : acc)
    for (auto& ax : row)
      ax[0] = ax[1] = _mm256_setzero_ps();
  for_block_spans<R>(n, kDotsSpan, [&](int m, int64_t k0, int64_t k1) {
    const uint16_t* am = ar + m * lda;
    __m256 c[4][2]; // in registers over the span
    for (int q = 0; q < 4; ++q)
      for (int h = 0; h < 2; ++h)
        c[q][h] = acc[m][q][h];
    for (int64_t k = k0; k < k1; k += 16) {
      const __m256 av[2] = {load_ph(am + k), load_ph(am + k + 8)};
      for (int q = 0; q < 4; ++q)
        for (int h = 0; h < 2; ++h)
          c[q][h] = _mm256_fmadd_ps(av[h], _mm256_loadu_ps(xi + q * ldx + k + 8 * h), c[q][h]);
    }
    for (int q = 0; q < 4; ++q)
      for (int h = 0; h < 2; ++h)
        acc[m][q][h] = c[q][h];
  });
  for (int b = 0; b < R / 4; ++b) {
    __m256 v[16]; // v[4q + m]: row m, vector q
    for (int m = 0; m < 4; ++m)
      for (int q = 0; q < 4; ++q)
        v[4 * q + m] = _mm256_add_ps(acc[4 * b + m][q][0], acc[4 * b + m][q][1]);
    const __m256 s[2] = {reduce8(v), reduce8(v + 8)};
    store_block16(s, out + 4 * b, ld_out);
  }
}

// f32_rows over passes of long rows and blocks of 4 rows × 4 vectors.
void f16_f32_dots(const uint16_t* a, int64_t lda, int64_t n_rows, const float* x, int64_t ldx,
                  int64_t n_x, int64_t n, float* out, int64_t ld_out) {
  dots_in_passes(
      n > kDotsSpan,
      [&](int64_t r, int64_t i, float* o) {
        f32_rows<kLongRows>(a + r * lda, lda, x + i * ldx, ldx, n, o, ld_out);
      },
      [&](int64_t r, int64_t i, float* o) {
        f32_rows<4>(a + r * lda, lda, x + i * ldx, ldx, n, o, ld_out);
      },
      [&](int64_t r, int64_t i) { return f16_f32_dot(a + r * lda, x + i * ldx, n); }, n_rows, n_x,
      out, ld_out);
}

Table make_table() {
  Table t = table_scalar();
  t.isa = Isa::avx2;
  t.quantize_act = quantize_act;
  t.i2s_gemv = i2s_gemv;
  t.i2s_gemm = i2s_gemm;
  t.q8_0_gemm = q8_0_gemm;
  t.q8_0_screen = q8_0_screen_avx<ScreenLanesAvx2>;
  t.quantize_q8_0 = quantize_q8_0;
  t.f32_to_f16 = f32_to_f16;
  t.f16_to_f32 = f16_to_f32;
  t.q8_0_to_f32 = q8_0_to_f32;
  t.rmsnorm = rmsnorm;
  set_f16_entries<f16_dot, f16_f32_dot>(t);
  set_vec_entries<Vec8>(t);
  t.f16_dots = f16_dots;
  t.f16_f32_dots = f16_f32_dots;
  t.head_dots = head_dots;
  // None: with 16 registers the lane-wise sums spill, and f16_dots is faster (perf of pp2048,
  // K·q samples per I2_S gemm sample 0.20 with f16_dots, 0.24 with key tiles).
  t.key_tile_dots = nullptr;
  return t;
}

} // namespace

const Table& table_avx2() {
  static const Table t = make_table();
  return t;
}

} // namespace bitnet::kernels
