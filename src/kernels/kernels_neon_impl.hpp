// Internal: the NEON kernels shared by kernels_neon.cpp (Armv8.0) and
// kernels_neon_dotprod.cpp (Armv8.2 + dotprod). They differ only in the int8 dot step, given
// as a policy `Dot` with two functions, each adding to acc's lanes sums of four a·b products:
//   dot(acc, a, b)            exact for any int8 a and b;
//   dot_codes(acc, codes, q)  exact when `codes` are I2_S codes 0..3 (a cheaper form may
//                             rely on that bound);
// and the gemm tile's step (I2sTileNeon below).
// Only those two TUs include this header. Internal linkage throughout, for the reason given
// in kernel_common.hpp (each TU compiles its own copy with its own -march flags).
#pragma once

#include <arm_neon.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/kernel_common.hpp"
#include "kernels/variants.hpp"
#include "kernels/vec_ops.hpp"

namespace bitnet::kernels {
namespace {

inline float half_to_float(uint16_t h) {
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

inline uint16_t float_to_half(float f) {
  return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(f))), 0);
}

// ---- activations -------------------------------------------------------------------------

void neon_quantize_act(const float* x, int64_t n, int8_t* q, float* scale_out, int32_t* sum_out) {
  // max|x| in float is exact, so it equals bitnet.cpp's max in double.
  float32x4_t vmax = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    vmax = vmaxq_f32(vmax, vabsq_f32(vld1q_f32(x + i)));
  for (; i < n; ++i)
    vmax = vmaxq_f32(vmax, vabsq_f32(vld1q_dup_f32(x + i)));
  const double amax = static_cast<double>(vmaxvq_f32(vmax));
  const float scale = act_scale_from_max(amax > kActMinMax ? amax : kActMinMax);

  // vcvtnq rounds half to even like nearest_int; the saturating narrows clamp to [-128, 127].
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
    const int v = clamp_i8(nearest_int(x[i] * scale));
    q[i] = static_cast<int8_t>(v);
    sum += v;
  }
  *scale_out = scale;
  *sum_out = sum;
}

// ---- I2_S × int8 -------------------------------------------------------------------------

// The 32 bytes of an I2_S block hold its 128 codes in four 32-element groups: byte j has
// element j in bits 7..6, 32+j in 5..4, 64+j in 3..2 and 96+j in 1..0 (docs/gguf-format.md §3).
// Given the block's two 16-byte halves, returns the codes of elements 16*i .. 16*i+15.
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
        acc[r][i & 1] = Dot::dot_codes(acc[r][i & 1], i2s_codes(p0, p1, i), a[i]);
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

// The gemm tile (kernel_common.hpp, i2s_gemm_panels): 16 rows (four vectors of 4 rows × 4
// codes) × Dot::kTokens tokens. Each token's 16 activations at a time are loaded once and
// their 4-byte groups used in turn, one per step (Dot::tile_step<lane>). Dot provides:
//   Acc, tile_zero()          the accumulator of 4 rows and its zero;
//   tile_step<lane>(acc, codes, act)
//                             acc plus codes (4 rows × 4 codes) times act's 4-byte group
//                             `lane` in every row;
//   tile_widen(acc)           the 4 int32 row sums;
//   kTokens, kChunk           the tile's tokens and the panel's inputs (Acc must not overflow
//                             within kChunk / 4 steps).
template <class Dot> struct I2sTileNeon {
  static constexpr int kVecs = 4;
  static constexpr int64_t kRows = 4 * kVecs;
  static constexpr int kTokens = Dot::kTokens;
  static constexpr int64_t kChunk = Dot::kChunk;

  // 4 rows' packed bytes of block b, transposed as 4×8 dwords: vector d holds packed dword
  // d of the 4 rows, whose four 2-bit fields are the codes of steps d, 8 + d, 16 + d and
  // 24 + d (the I2_S byte j holds inputs j, 32 + j, 64 + j and 96 + j from the top bits
  // down).
  static constexpr int kPackRows = 4;
  static void pack_rows(const uint8_t* const* rows, int64_t b, int8_t* dst) {
    const uint8x16_t m = vdupq_n_u8(3);
    for (int h = 0; h < 2; ++h) { // dwords 4h..4h+3
      uint32x4_t x[4];
      for (int i = 0; i < 4; ++i)
        x[i] = vreinterpretq_u32_u8(vld1q_u8(rows[i] + b * 32 + 16 * h));
      const uint32x4_t t01 = vtrn1q_u32(x[0], x[1]), t01h = vtrn2q_u32(x[0], x[1]);
      const uint32x4_t t23 = vtrn1q_u32(x[2], x[3]), t23h = vtrn2q_u32(x[2], x[3]);
      const auto lo = [](uint32x4_t a, uint32x4_t c) {
        return vreinterpretq_u8_u64(vtrn1q_u64(vreinterpretq_u64_u32(a), vreinterpretq_u64_u32(c)));
      };
      const auto hi = [](uint32x4_t a, uint32x4_t c) {
        return vreinterpretq_u8_u64(vtrn2q_u64(vreinterpretq_u64_u32(a), vreinterpretq_u64_u32(c)));
      };
      const uint8x16_t y[4] = {lo(t01, t23), lo(t01h, t23h), hi(t01, t23), hi(t01h, t23h)};
      for (int j = 0; j < 4; ++j) {
        const int d = 4 * h + j;
        const auto put = [&](int step, uint8x16_t v) {
          vst1q_s8(dst + step * kRows * 4, vreinterpretq_s8_u8(v));
        };
        put(d, vshrq_n_u8(y[j], 6));
        put(8 + d, vandq_u8(vshrq_n_u8(y[j], 4), m));
        put(16 + d, vandq_u8(vshrq_n_u8(y[j], 2), m));
        put(24 + d, vandq_u8(y[j], m));
      }
    }
  }

  template <int L, int NT>
  static void steps(const int8_t* panel, const int8x16_t (&act)[NT],
                    typename Dot::Acc (&acc)[NT][kVecs]) {
    int8x16_t p[kVecs];
    for (int v = 0; v < kVecs; ++v)
      p[v] = vld1q_s8(panel + L * kRows * 4 + 16 * v);
    for (int t = 0; t < NT; ++t)
      for (int v = 0; v < kVecs; ++v)
        acc[t][v] = Dot::template tile_step<L>(acc[t][v], p[v], act[t]);
  }

  template <int NT>
  static void dot(const int8_t* panel, int64_t kc, const int8_t* q, int64_t q_stride,
                  int32_t* sums) {
    typename Dot::Acc acc[NT][kVecs];
    for (int t = 0; t < NT; ++t)
      for (int v = 0; v < kVecs; ++v)
        acc[t][v] = Dot::tile_zero();
    for (int64_t s = 0; s < kc / 4; s += 4) {
      int8x16_t act[NT];
      for (int t = 0; t < NT; ++t)
        act[t] = vld1q_s8(q + t * q_stride + 4 * s);
      const int8_t* ps = panel + s * kRows * 4;
      steps<0>(ps, act, acc);
      steps<1>(ps, act, acc);
      steps<2>(ps, act, acc);
      steps<3>(ps, act, acc);
    }
    for (int t = 0; t < NT; ++t)
      for (int v = 0; v < kVecs; ++v) {
        int32_t* dst = sums + t * kRows + 4 * v;
        vst1q_s32(dst, vaddq_s32(vld1q_s32(dst), Dot::tile_widen(acc[t][v])));
      }
  }

  // i2s_rescale on 4 lanes: the same float operations in the same order.
  static void store(const int32_t* sums, int rows, int32_t act_sum, float act_scale, float w_scale,
                    float* out) {
    const float32x4_t vsum = vdupq_n_f32(static_cast<float>(act_sum));
    const float32x4_t vact = vdupq_n_f32(act_scale);
    const float32x4_t vw = vdupq_n_f32(w_scale);
    int j = 0;
    for (; j + 4 <= rows; j += 4) {
      const float32x4_t f = vcvtq_f32_s32(vld1q_s32(sums + j));
      vst1q_f32(out + j, vmulq_f32(vdivq_f32(vsubq_f32(f, vsum), vact), vw));
    }
    for (; j < rows; ++j)
      out[j] = i2s_rescale(sums[j], act_sum, act_scale, w_scale);
  }
};

template <class Dot>
void neon_i2s_gemm(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1,
                   const int8_t* q, const float* act_scale, const int32_t* act_sum, int64_t n_tok,
                   float* out, int64_t ld_out) {
  i2s_gemm_panels<I2sTileNeon<Dot>>(w, w_scale, k, r0, r1, q, nullptr, act_scale, act_sum, n_tok,
                                    out, ld_out);
}

// ---- F16 ---------------------------------------------------------------------------------

void neon_f32_to_f16(const float* x, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    vst1_u16(out + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
  for (; i < n; ++i)
    out[i] = float_to_half(x[i]);
}

void neon_f16_to_f32(const uint16_t* x, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    vst1q_f32(out + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))));
  for (; i < n; ++i)
    out[i] = half_to_float(x[i]);
}

// The 8 halves at p as two f32 vectors.
inline void load_f16x8(const uint16_t* p, float32x4_t& lo, float32x4_t& hi) {
  const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p));
  lo = vcvt_f32_f16(vget_low_f16(h));
  hi = vcvt_high_f32_f16(h);
}

// 8 f16 or f32 values as two f32 vectors.
inline void load8(const uint16_t* p, float32x4_t& lo, float32x4_t& hi) {
  load_f16x8(p, lo, hi);
}
inline void load8(const float* p, float32x4_t& lo, float32x4_t& hi) {
  lo = vld1q_f32(p);
  hi = vld1q_f32(p + 4);
}

// Σ w[i]·x[i] in ggml_vec_dot_f16's order on the reference's AVX-512 build
// (kernel_common.hpp), so Arm gives the x86 results bit for bit: acc[4q + j] holds lanes
// 4j..4j+3 of accumulator q. x is f16, or f32 for f16_dots (products fused either way).
// (bitnet.cpp on Arm sums in fp16 arithmetic where the CPU has it; that lower-precision order
// is not reproduced.)
template <class X> float neon_ggml_f16_dot(const uint16_t* w, const X* x, int64_t k) {
  float32x4_t acc[16];
  for (float32x4_t& a : acc)
    a = vdupq_n_f32(0.0f);
  const int64_t np = k / kF16Chunk * kF16Chunk;
  for (int64_t i = 0; i < np; i += kF16Chunk)
    for (int j = 0; j < 16; j += 2) {
      float32x4_t wl, wh, xl, xh;
      load_f16x8(w + i + 4 * j, wl, wh);
      load8(x + i + 4 * j, xl, xh);
      acc[j] = vfmaq_f32(acc[j], wl, xl);
      acc[j + 1] = vfmaq_f32(acc[j + 1], wh, xh);
    }
  float32x4_t c[4];
  for (int j = 0; j < 4; ++j)
    c[j] = vaddq_f32(vaddq_f32(acc[j], acc[8 + j]), vaddq_f32(acc[4 + j], acc[12 + j]));
  const float32x4_t s4 = vaddq_f32(vaddq_f32(c[0], c[2]), vaddq_f32(c[1], c[3]));
  const float32x2_t s2 = vadd_f32(vget_low_f32(s4), vget_high_f32(s4));
  return f16_dot_tail(vget_lane_f32(s2, 0) + vget_lane_f32(s2, 1), w, x, np, k, half_to_float);
}

float neon_f16_dot(const uint16_t* w, const uint16_t* x, int64_t k) {
  return neon_ggml_f16_dot(w, x, k);
}

// tinyBLAS order (kernels.hpp): acc[j] holds lanes 4j..4j+3.
float neon_f16_f32_dot(const uint16_t* w, const float* x, int64_t k) {
  float32x4_t acc[4];
  for (float32x4_t& a : acc)
    a = vdupq_n_f32(0.0f);
  for (int64_t i = 0; i < k; i += 16)
    for (int j = 0; j < 4; j += 2) {
      float32x4_t wl, wh;
      load_f16x8(w + i + 4 * j, wl, wh);
      acc[j] = vfmaq_f32(acc[j], wl, vld1q_f32(x + i + 4 * j));
      acc[j + 1] = vfmaq_f32(acc[j + 1], wh, vld1q_f32(x + i + 4 * j + 4));
    }
  const float32x4_t s4 = vaddq_f32(vaddq_f32(acc[0], acc[2]), vaddq_f32(acc[1], acc[3]));
  const float32x2_t s2 = vadd_f32(vget_low_f32(s4), vget_high_f32(s4));
  return vget_lane_f32(s2, 0) + vget_lane_f32(s2, 1);
}

// ---- Q8_0 --------------------------------------------------------------------------------

float q8_block_scale(const uint8_t* block) {
  uint16_t d;
  std::memcpy(&d, block, sizeof d);
  return half_to_float(d);
}

void neon_quantize_q8_0(const float* x, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const float* xb = x + b * kQ8Block;
    float32x4_t v[8];
    float32x4_t vmax = vdupq_n_f32(0.0f);
    for (int j = 0; j < 8; ++j) {
      v[j] = vld1q_f32(xb + 4 * j);
      vmax = vmaxq_f32(vmax, vabsq_f32(v[j]));
    }
    const float amax = vmaxvq_f32(vmax);
    const uint16_t d = float_to_half(q8_d(amax));
    const float32x4_t id = vdupq_n_f32(q8_id(amax));
    int16x8_t h[4];
    for (int j = 0; j < 4; ++j)
      h[j] = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(vmulq_f32(v[2 * j], id))),
                          vqmovn_s32(vcvtnq_s32_f32(vmulq_f32(v[2 * j + 1], id))));
    uint8_t* ob = out + b * kQ8BlockBytes;
    std::memcpy(ob, &d, sizeof d);
    vst1q_s8(reinterpret_cast<int8_t*>(ob + 2), vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1])));
    vst1q_s8(reinterpret_cast<int8_t*>(ob + 18), vcombine_s8(vqmovn_s16(h[2]), vqmovn_s16(h[3])));
  }
}

// ggml's Q8_0 order on x86 (kernel_common.hpp) for NR rows against one operand x: lanes
// 0..3 in lo[r], 4..7 in hi[r]. The rows share each operand load and scale.
template <class Dot, int NR>
void q8_0_rows_dot(const uint8_t* const* w, const uint8_t* x, int64_t nb, float* out) {
  float32x4_t lo[NR], hi[NR];
  for (int r = 0; r < NR; ++r)
    lo[r] = hi[r] = vdupq_n_f32(0.0f);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* xb = x + b * kQ8BlockBytes;
    const float dx = q8_block_scale(xb);
    const auto* qx = reinterpret_cast<const int8_t*>(xb + 2);
    const int8x16_t x0 = vld1q_s8(qx), x1 = vld1q_s8(qx + 16);
    for (int r = 0; r < NR; ++r) {
      const uint8_t* wb = w[r] + b * kQ8BlockBytes;
      const float32x4_t d = vdupq_n_f32(q8_block_scale(wb) * dx);
      const auto* qw = reinterpret_cast<const int8_t*>(wb + 2);
      lo[r] = vfmaq_f32(lo[r], d, vcvtq_f32_s32(Dot::quads(vld1q_s8(qw), x0)));
      hi[r] = vfmaq_f32(hi[r], d, vcvtq_f32_s32(Dot::quads(vld1q_s8(qw + 16), x1)));
    }
  }
  for (int r = 0; r < NR; ++r) {
    const float32x4_t s4 = vaddq_f32(lo[r], hi[r]);
    const float32x2_t s2 = vadd_f32(vget_low_f32(s4), vget_high_f32(s4));
    out[r] = vget_lane_f32(s2, 0) + vget_lane_f32(s2, 1);
  }
}

template <class Dot>
void neon_q8_0_gemm(const uint8_t* w, int64_t k, int64_t r0, int64_t r1, const uint8_t* xq,
                    int64_t n_tok, float* out, int64_t ld_out) {
  q8_0_gemm_rows([](auto nr, auto... args) { q8_0_rows_dot<Dot, decltype(nr)::value>(args...); }, w,
                 k, r0, r1, xq, n_tok, out, ld_out);
}

// Table::q8_0_screen for kTokens tokens at a time: a group's 16 rows as 4 vectors of 4
// lanes. The stored bytes minus 128 are the signed q, so Dot::quads (sdot, or its
// emulation) needs no offset, and each operand word is repeated in every lane. Each lane keeps
// q8_0_screen's order.
template <class Dot, int NT>
void neon_q8_0_screen_pass(const uint8_t* group, int64_t nb, const int8_t* xq, int64_t k,
                           const float* xd, float* out, int64_t ld_out) {
  float32x4_t acc[NT][4];
  for (int t = 0; t < NT; ++t)
    for (int v = 0; v < 4; ++v)
      acc[t][v] = vdupq_n_f32(0.0f);
  const uint8x16_t offset = vdupq_n_u8(0x80);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* qb = group + b * kScreenBlockBytes;
    int32x4_t s[NT][4];
    for (int t = 0; t < NT; ++t)
      for (int v = 0; v < 4; ++v)
        s[t][v] = vdupq_n_s32(0);
    for (int j = 0; j < 8; ++j) {
      int8x16_t q[4];
      for (int v = 0; v < 4; ++v)
        q[v] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(qb + 64 * j + 16 * v), offset));
      for (int t = 0; t < NT; ++t) {
        int32_t x4;
        std::memcpy(&x4, xq + t * k + b * kQ8Block + 4 * j, sizeof x4);
        const int8x16_t x = vreinterpretq_s8_s32(vdupq_n_s32(x4));
        for (int v = 0; v < 4; ++v)
          s[t][v] = vaddq_s32(s[t][v], Dot::quads(q[v], x));
      }
    }
    const uint16_t* scales = reinterpret_cast<const uint16_t*>(qb + kScreenQuantBytes);
    float32x4_t d[4];
    for (int v = 0; v < 4; ++v)
      d[v] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(scales + 4 * v)));
    for (int t = 0; t < NT; ++t) {
      const float32x4_t dx = vdupq_n_f32(xd[t * nb + b]);
      for (int v = 0; v < 4; ++v)
        acc[t][v] = vfmaq_f32(acc[t][v], vcvtq_f32_s32(s[t][v]), vmulq_f32(d[v], dx));
    }
  }
  for (int t = 0; t < NT; ++t)
    for (int v = 0; v < 4; ++v)
      vst1q_f32(out + t * ld_out + 4 * v, acc[t][v]);
}

template <class Dot>
void neon_q8_0_screen(const uint8_t* w, int64_t k, int64_t n_groups, const int8_t* xq,
                      const float* xd, const int32_t* /*x_bias: the sums are signed*/, int64_t n_x,
                      float* out, int64_t ld_out) {
  constexpr int kTokens = 2; // 2 × 8 accumulators, 4 weight vectors, the operand
  const int64_t nb = k / kQ8Block;
  for (int64_t g = 0; g < n_groups; ++g)
    for (int64_t t0 = 0; t0 < n_x; t0 += kTokens)
      with_token_count<kTokens>(n_x - t0 < kTokens ? static_cast<int>(n_x - t0) : kTokens,
                                [&](auto nt) {
                                  neon_q8_0_screen_pass<Dot, decltype(nt)::value>(
                                      w + g * screen_group_bytes(k), nb, xq + t0 * k, k,
                                      xd + t0 * nb, out + t0 * ld_out + kScreenRows * g, ld_out);
                                });
}

void neon_q8_0_to_f32(const uint8_t* x, int64_t n, float* out) {
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const uint8_t* xb = x + b * kQ8BlockBytes;
    const float d = q8_block_scale(xb);
    for (int j = 0; j < 2; ++j) {
      const int8x16_t v = vld1q_s8(reinterpret_cast<const int8_t*>(xb + 2 + 16 * j));
      const int16x8_t lo = vmovl_s8(vget_low_s8(v));
      const int16x8_t hi = vmovl_high_s8(v);
      float* o = out + b * kQ8Block + 16 * j;
      vst1q_f32(o, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d));
      vst1q_f32(o + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(lo)), d));
      vst1q_f32(o + 8, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d));
      vst1q_f32(o + 12, vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(hi)), d));
    }
  }
}

// ---- float ops ---------------------------------------------------------------------------

// The vector ops of the float kernels (vec_ops.hpp) on 4 lanes.
struct Vec4 {
  using F = float32x4_t;
  static constexpr int kLanes = 4;
  static F load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, F v) { vst1q_f32(p, v); }
  static F set1(float f) { return vdupq_n_f32(f); }
  static F add(F a, F b) { return vaddq_f32(a, b); }
  static F sub(F a, F b) { return vsubq_f32(a, b); }
  static F mul(F a, F b) { return vmulq_f32(a, b); }
  static F div(F a, F b) { return vdivq_f32(a, b); }
  static F fmadd(F a, F b, F c) { return vfmaq_f32(c, a, b); }
  // −(c − a·b): negation is exact and the rounding symmetric.
  static F fmsub(F a, F b, F c) { return vnegq_f32(vfmsq_f32(c, a, b)); }
  static F fnmadd(F a, F b, F c) { return vfmsq_f32(c, a, b); }
  // A select, not fmax: v > 0 ? v : 0 maps NaN to 0 as the scalar reference does.
  static F relu(F v) { return vbslq_f32(vcgtq_f32(v, vdupq_n_f32(0.0f)), v, vdupq_n_f32(0.0f)); }
  static F max(F a, F b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
  static float hmax(F v) { return vmaxvq_f32(v); }
  static float sum16(const F* e) {
    const float32x4_t s4 = vaddq_f32(vaddq_f32(e[0], e[2]), vaddq_f32(e[1], e[3]));
    const float32x2_t s2 = vadd_f32(vget_low_f32(s4), vget_high_f32(s4));
    return vget_lane_f32(s2, 0) + vget_lane_f32(s2, 1);
  }
  static F round_f16(F v) { return vcvt_f32_f16(vcvt_f16_f32(v)); }
  static F expf(F x);
};

// ggml_expf (kernels_scalar.cpp) on 4 lanes: its steps (exp_steps; vfmaq/vfmsq are fused like
// the x86 FMAs), then the scaling.
float32x4_t Vec4::expf(float32x4_t x) {
  float32x4_t n;
  const float32x4_t j = exp_steps<Vec4>(x, n);
  // j·2^n as j·2^a·2^b with a = n/2 truncated: one rounding (kernel_common.hpp pow2_float).
  const int32x4_t ni = vcvtq_s32_f32(n);
  const int32x4_t a = vshrq_n_s32(
      vaddq_s32(ni, vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(ni), 31))), 1);
  const int32x4_t bias = vdupq_n_s32(127);
  const float32x4_t pa = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(a, bias), 23));
  const float32x4_t pb = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vsubq_s32(ni, a), bias), 23));
  float32x4_t res = vmulq_f32(vmulq_f32(j, pa), pb);
  const float32x4_t sat = vbslq_f32(vclezq_f32(n), vdupq_n_f32(0.0f), vdupq_n_f32(INFINITY));
  res = vbslq_f32(vcagtq_f32(n, vdupq_n_f32(192.0f)), sat, res);
  return vbslq_f32(vceqq_f32(n, n), res, n);
}

// The scalar table with the entries where NEON pays replaced. rmsnorm stays scalar (its
// double sum).
template <class Dot> Table make_neon_table(Isa isa) {
  Table t = table_scalar();
  t.isa = isa;
  t.quantize_act = neon_quantize_act;
  t.i2s_gemv = neon_i2s_gemv<Dot>;
  t.i2s_gemm = neon_i2s_gemm<Dot>;
  t.q8_0_gemm = neon_q8_0_gemm<Dot>;
  t.q8_0_screen = neon_q8_0_screen<Dot>;
  t.quantize_q8_0 = neon_quantize_q8_0;
  t.f32_to_f16 = neon_f32_to_f16;
  t.f16_to_f32 = neon_f16_to_f32;
  t.q8_0_to_f32 = neon_q8_0_to_f32;
  set_f16_entries<neon_f16_dot, neon_f16_f32_dot>(t);
  set_vec_entries<Vec4>(t);
  t.f16_dots = dots_each<neon_ggml_f16_dot<float>>;
  t.f16_f32_dots = dots_each<neon_f16_f32_dot>;
  t.head_dots = head_dots_by<dots_each<neon_ggml_f16_dot<float>>>;
  t.key_tile_dots = vec_key_tile_dots<Vec4, 4>;
  return t;
}

} // namespace
} // namespace bitnet::kernels
