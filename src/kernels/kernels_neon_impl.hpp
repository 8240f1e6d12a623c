// Internal: the NEON kernels shared by kernels_neon.cpp (Armv8.0) and
// kernels_neon_dotprod.cpp (Armv8.2 dotprod). They differ only in the int8 dot step, passed
// as a policy `Dot` with `static int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b)`
// (acc lanes += sums of four a·b products). Only those two TUs include this header.
//
// Everything here has internal linkage on purpose: each TU compiles its own copy with its
// own -march flags, and an inline function with external linkage would let the linker keep
// the dotprod copy for the Armv8.0 table (SIGILL on CPUs without dotprod).
#pragma once

#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/variants.hpp"
#include "util/fp16.hpp"

namespace bitnet::kernels {
namespace {

// The I2_S output rescale (facts §2), in this order and in float, as the scalar reference.
inline float i2s_rescale(int32_t sumi, int32_t act_sum, float act_scale, float w_scale) {
  return (static_cast<float>(sumi) - static_cast<float>(act_sum)) / act_scale * w_scale;
}

// Calls fn.template operator()<T>(t) over [t_begin, t_end) in tiles of T = 4 tokens and one
// last tile of 1..3, so kernels keep their accumulators in registers for a fixed T.
template <class Fn> void for_token_tiles(int64_t t_begin, int64_t t_end, Fn&& fn) {
  int64_t t = t_begin;
  for (; t + 4 <= t_end; t += 4)
    fn.template operator()<4>(t);
  switch (t_end - t) {
  case 3:
    fn.template operator()<3>(t);
    break;
  case 2:
    fn.template operator()<2>(t);
    break;
  case 1:
    fn.template operator()<1>(t);
    break;
  default:
    break;
  }
}

// ---- activations -------------------------------------------------------------------------

void neon_quantize_act(const float* x, int64_t n, int8_t* q, float* scale_out, int32_t* sum_out) {
  // |x| max in float is exact, so it equals bitnet.cpp's max in double.
  float32x4_t vmax = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    vmax = vmaxq_f32(vmax, vabsq_f32(vld1q_f32(x + i)));
  float amax = vmaxvq_f32(vmax);
  for (; i < n; ++i)
    amax = std::max(amax, std::fabs(x[i]));
  const double max = std::max(1e-5, static_cast<double>(amax));
  const float scale = static_cast<float>(127.0 / max);

  // vcvtnq rounds half to even, like ggml's nearest_int; the saturating narrows clamp to
  // [-128, 127].
  const float32x4_t vs = vdupq_n_f32(scale);
  int32x4_t vsum = vdupq_n_s32(0);
  i = 0;
  for (; i + 16 <= n; i += 16) {
    int16x8_t h[2];
    for (int j = 0; j < 2; ++j) {
      const int32x4_t lo = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i + 8 * j), vs));
      const int32x4_t hi = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i + 8 * j + 4), vs));
      h[j] = vcombine_s16(vqmovn_s32(lo), vqmovn_s32(hi));
    }
    const int8x16_t v = vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1]));
    vst1q_s8(q + i, v);
    vsum = vpadalq_s16(vsum, vpaddlq_s8(v));
  }
  int32_t sum = vaddvq_s32(vsum);
  for (; i < n; ++i) {
    const int32_t v = std::clamp(vcvtns_s32_f32(x[i] * scale), -128, 127);
    q[i] = static_cast<int8_t>(v);
    sum += v;
  }
  *scale_out = scale;
  *sum_out = sum;
}

// ---- I2_S × int8 -------------------------------------------------------------------------

// The 32 bytes of an I2_S block hold its 128 codes in four 32-element groups: byte j has
// element j in bits 7..6, 32+j in 5..4, 64+j in 3..2 and 96+j in 1..0 (facts §1). Given
// the block's two 16-byte halves, returns the codes of elements 16*i .. 16*i+15.
inline int8x16_t i2s_codes(uint8x16_t p0, uint8x16_t p1, int i) {
  const uint8x16_t p = (i & 1) ? p1 : p0;
  const uint8x16_t m = vdupq_n_u8(3);
  switch (i >> 1) {
  case 0:
    return vreinterpretq_s8_u8(vshrq_n_u8(p, 6));
  case 1:
    return vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(p, 4), m));
  case 2:
    return vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(p, 2), m));
  default:
    return vreinterpretq_s8_u8(vandq_u8(p, m));
  }
}

// Σ code·q for R consecutive rows starting at w (row stride k/4 bytes), codes unpacked in
// registers as they stream in: the decode path, bound by memory bandwidth.
template <class Dot, int R>
void i2s_rows_dot(const uint8_t* w, int64_t k, const int8_t* q, int32_t* sumi) {
  const int64_t row_bytes = k / 4;
  int32x4_t acc[R][2];
  for (int r = 0; r < R; ++r)
    acc[r][0] = acc[r][1] = vdupq_n_s32(0);
  for (int64_t b = 0; b < k / kI2sBlock; ++b) {
    int8x16_t a[8];
    for (int i = 0; i < 8; ++i)
      a[i] = vld1q_s8(q + b * kI2sBlock + 16 * i);
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = w + r * row_bytes + b * 32;
      const uint8x16_t p0 = vld1q_u8(p);
      const uint8x16_t p1 = vld1q_u8(p + 16);
      for (int i = 0; i < 8; ++i)
        acc[r][i & 1] = Dot::dot(acc[r][i & 1], i2s_codes(p0, p1, i), a[i]);
    }
  }
  for (int r = 0; r < R; ++r)
    sumi[r] = vaddvq_s32(vaddq_s32(acc[r][0], acc[r][1]));
}

template <class Dot>
void neon_i2s_gemv(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1,
                   const int8_t* q, float act_scale, int32_t act_sum, float* out) {
  constexpr int R = 4;
  const int64_t row_bytes = k / 4;
  int64_t r = r0;
  int32_t sumi[R];
  for (; r + R <= r1; r += R) {
    i2s_rows_dot<Dot, R>(w + r * row_bytes, k, q, sumi);
    for (int j = 0; j < R; ++j)
      out[r + j] = i2s_rescale(sumi[j], act_sum, act_scale, w_scale);
  }
  for (; r < r1; ++r) {
    i2s_rows_dot<Dot, 1>(w + r * row_bytes, k, q, sumi);
    out[r] = i2s_rescale(sumi[0], act_sum, act_scale, w_scale);
  }
}

// Prefill is compute bound, so gemm unpacks a tile of kGemmRows weight rows × kPanelK
// inputs once into an int8 panel on the stack (4 KiB, stays in L1) and reuses it for a
// block of up to kGemmTokenBlock tokens, whose activations stay in L2 while the row tiles
// pass. Partial sums live in a small int32 tile, so no heap scratch is needed.
constexpr int kGemmRows = 4;
constexpr int64_t kPanelK = 1024; // a multiple of kI2sBlock
constexpr int64_t kGemmTokenBlock = 64;

// Unpacks inputs [kb, kb+kc) of `rows` weight rows into the panel (row stride kPanelK);
// rows past the matrix get zero codes, and their results are discarded.
void i2s_unpack_panel(const uint8_t* w, int64_t k, int rows, int64_t kb, int64_t kc,
                      int8_t* panel) {
  for (int j = 0; j < kGemmRows; ++j) {
    int8_t* dst = panel + j * kPanelK;
    if (j >= rows) {
      std::memset(dst, 0, static_cast<size_t>(kc));
      continue;
    }
    const uint8_t* src = w + j * (k / 4) + kb / 4;
    for (int64_t b = 0; b < kc / kI2sBlock; ++b) {
      const uint8x16_t p0 = vld1q_u8(src + b * 32);
      const uint8x16_t p1 = vld1q_u8(src + b * 32 + 16);
      for (int i = 0; i < 8; ++i)
        vst1q_s8(dst + b * kI2sBlock + 16 * i, i2s_codes(p0, p1, i));
    }
  }
}

// sumi[r*kGemmTokenBlock + t] += Σ code·q over the panel's kc inputs for its kGemmRows
// rows × T tokens; token t's activations for those inputs start at q + t*k.
template <class Dot, int T>
void i2s_panel_dot(const int8_t* panel, int64_t kc, const int8_t* q, int64_t k, int32_t* sumi) {
  constexpr int R = kGemmRows;
  int32x4_t acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t)
      acc[r][t] = vdupq_n_s32(0);
  for (int64_t i = 0; i < kc; i += 16) {
    int8x16_t c[R];
    int8x16_t a[T];
    for (int r = 0; r < R; ++r)
      c[r] = vld1q_s8(panel + r * kPanelK + i);
    for (int t = 0; t < T; ++t)
      a[t] = vld1q_s8(q + t * k + i);
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t)
        acc[r][t] = Dot::dot(acc[r][t], c[r], a[t]);
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t)
      sumi[r * kGemmTokenBlock + t] += vaddvq_s32(acc[r][t]);
}

template <class Dot>
void neon_i2s_gemm(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1,
                   const int8_t* q, const float* act_scale, const int32_t* act_sum, int64_t n_tok,
                   float* out, int64_t ld_out) {
  alignas(16) int8_t panel[kGemmRows * kPanelK];
  int32_t sumi[kGemmRows][kGemmTokenBlock];
  for (int64_t tb = 0; tb < n_tok; tb += kGemmTokenBlock) {
    const int64_t te = std::min(n_tok, tb + kGemmTokenBlock);
    for (int64_t r = r0; r < r1; r += kGemmRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kGemmRows, r1 - r));
      std::memset(sumi, 0, sizeof(sumi));
      for (int64_t kb = 0; kb < k; kb += kPanelK) {
        const int64_t kc = std::min(kPanelK, k - kb);
        i2s_unpack_panel(w + r * (k / 4), k, rows, kb, kc, panel);
        for_token_tiles(tb, te, [&]<int T>(int64_t t) {
          i2s_panel_dot<Dot, T>(panel, kc, q + t * k + kb, k, &sumi[0][t - tb]);
        });
      }
      for (int64_t t = tb; t < te; ++t)
        for (int j = 0; j < rows; ++j)
          out[t * ld_out + r + j] = i2s_rescale(sumi[j][t - tb], act_sum[t], act_scale[t], w_scale);
    }
  }
}

// ---- F16 ---------------------------------------------------------------------------------

void neon_f32_to_f16(const float* x, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    vst1_u16(out + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
  for (; i < n; ++i)
    out[i] = fp32_to_fp16(x[i]);
}

void neon_f16_to_f32(const uint16_t* x, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    vst1q_f32(out + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))));
  for (; i < n; ++i)
    out[i] = fp16_to_fp32(x[i]);
}

// The 8 f16 values at p as two f32 vectors.
inline void load_f16x8(const uint16_t* p, float32x4_t& lo, float32x4_t& hi) {
  const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p));
  lo = vcvt_f32_f16(vget_low_f16(h));
  hi = vcvt_high_f32_f16(h);
}

float neon_f16_dot(const uint16_t* a, const uint16_t* b, int64_t n) {
  float32x4_t acc0 = vdupq_n_f32(0.0f);
  float32x4_t acc1 = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    float32x4_t alo, ahi, blo, bhi;
    load_f16x8(a + i, alo, ahi);
    load_f16x8(b + i, blo, bhi);
    acc0 = vfmaq_f32(acc0, alo, blo);
    acc1 = vfmaq_f32(acc1, ahi, bhi);
  }
  float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
  for (; i < n; ++i)
    sum += fp16_to_fp32(a[i]) * fp16_to_fp32(b[i]);
  return sum;
}

// R weight rows × T tokens of the F16 product, converting both operands in registers.
template <int R, int T>
void f16_tile(const uint16_t* w, int64_t k, const uint16_t* x, float (*sums)[T]) {
  float32x4_t acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t)
      acc[r][t] = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    float32x4_t xl[T], xh[T];
    for (int t = 0; t < T; ++t)
      load_f16x8(x + t * k + i, xl[t], xh[t]);
    for (int r = 0; r < R; ++r) {
      float32x4_t wl, wh;
      load_f16x8(w + r * k + i, wl, wh);
      for (int t = 0; t < T; ++t)
        acc[r][t] = vfmaq_f32(vfmaq_f32(acc[r][t], wl, xl[t]), wh, xh[t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      float sum = vaddvq_f32(acc[r][t]);
      for (int64_t j = i; j < k; ++j)
        sum += fp16_to_fp32(w[r * k + j]) * fp16_to_fp32(x[t * k + j]);
      sums[r][t] = sum;
    }
}

template <int T>
void f16_tokens(const uint16_t* w, int64_t k, int64_t r0, int64_t r1, const uint16_t* x, int64_t t0,
                float* out, int64_t ld_out) {
  constexpr int R = 4;
  float sums[R][T];
  int64_t r = r0;
  for (; r + R <= r1; r += R) {
    f16_tile<R, T>(w + r * k, k, x + t0 * k, sums);
    for (int j = 0; j < R; ++j)
      for (int t = 0; t < T; ++t)
        out[(t0 + t) * ld_out + r + j] = sums[j][t];
  }
  for (; r < r1; ++r) {
    f16_tile<1, T>(w + r * k, k, x + t0 * k, sums);
    for (int t = 0; t < T; ++t)
      out[(t0 + t) * ld_out + r] = sums[0][t];
  }
}

void neon_f16_gemm(const uint16_t* w, int64_t k, int64_t r0, int64_t r1, const uint16_t* x,
                   int64_t n_tok, float* out, int64_t ld_out) {
  for_token_tiles(0, n_tok,
                  [&]<int T>(int64_t t) { f16_tokens<T>(w, k, r0, r1, x, t, out, ld_out); });
}

// The scalar table with the entries where NEON pays replaced.
template <class Dot> Table make_neon_table(Isa isa) {
  Table t = table_scalar();
  t.isa = isa;
  t.quantize_act = neon_quantize_act;
  t.i2s_gemv = neon_i2s_gemv<Dot>;
  t.i2s_gemm = neon_i2s_gemm<Dot>;
  t.f16_gemm = neon_f16_gemm;
  t.f32_to_f16 = neon_f32_to_f16;
  t.f16_to_f32 = neon_f16_to_f32;
  t.f16_dot = neon_f16_dot;
  return t;
}

} // namespace
} // namespace bitnet::kernels
