// Internal: small numeric helpers every kernel variant shares, so all variants evaluate the
// same float expressions (bit-identical results) from the same integers.
//
// Everything here has internal linkage on purpose: this header is compiled into TUs with
// different -m flags, and an inline function with external linkage would be merged by the
// linker into one copy, possibly the AVX-512 one, which would then run on every CPU.
// For the same reason the ISA TUs use no library inline code that could be emitted out of
// line (std::min/std::max, container members, util/fp16.hpp): only intrinsics and these.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/kernels.hpp"

namespace bitnet::kernels {
namespace {

inline constexpr double kActMinMax = 1e-5;   // bitnet.cpp's floor for max|x|
inline constexpr int64_t kQ8BlockBytes = 34; // f16 d + int8[32]

// bitnet.cpp: act_scale = (float)(127 / max) with max in double.
inline float act_scale_from_max(double max) {
  return static_cast<float>(127.0 / max);
}

// ggml's nearest_int: round half to even via the 1.5·2^23 magic number (|f| <= 2^22).
inline int nearest_int(float f) {
  const float v = f + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &v, sizeof i);
  return (i & 0x007FFFFF) - 0x00400000;
}

inline int clamp_i8(int v) {
  return v < -128 ? -128 : (v > 127 ? 127 : v);
}

// ggml's rms_norm mean of row x: (float)(s / n), where s = Σ (double)(x_i·x_i) added in
// element order, one add latency per element. `any_order` is the same Σ added in any other
// order. Both are within γ·T of the exact sum T of the n nonnegative terms, γ = (n−1)·2⁻⁵³ /
// (1 − (n−1)·2⁻⁵³) (Higham, Accuracy and Stability of Numerical Algorithms, §4.2), so s lies
// within 2γ·T ≤ err = n·2⁻⁵¹·any_order of it (twice that bound, which also covers the
// roundings of the two ends). Division by n and the conversion to float are monotone: where
// both ends give the same float, so does s, and it is returned without the ordered sum. Else
// (an end within about n·2⁻⁵⁰ of a float's rounding boundary, once in some 10⁴ rows; or a
// NaN) the row is summed in order.
inline float rms_mean(double any_order, const float* x, int64_t n) {
  const auto dn = static_cast<double>(n);
  const double err = any_order * (dn * 0x1p-51);
  const auto lo = static_cast<float>((any_order - err) / dn);
  if (lo == static_cast<float>((any_order + err) / dn)) return lo;
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i)
    s += static_cast<double>(x[i] * x[i]);
  return static_cast<float>(s / dn);
}

// bitnet.cpp's I2_S rescale, evaluated in this order in float (docs/model-math.md §3).
inline float i2s_rescale(int32_t sumi, int32_t act_sum, float act_scale, float w_scale) {
  return (static_cast<float>(sumi) - static_cast<float>(act_sum)) / act_scale * w_scale;
}

// Float vectors of N lanes (GCC's vector extensions; GCC 12 drops a vector_size that depends
// on a template parameter, hence one specialisation per size).
template <int N> struct FloatLanes;
template <> struct FloatLanes<2> {
  typedef float V __attribute__((vector_size(8)));
};
template <> struct FloatLanes<4> {
  typedef float V __attribute__((vector_size(16)));
};
template <> struct FloatLanes<8> {
  typedef float V __attribute__((vector_size(32)));
};
template <> struct FloatLanes<16> {
  typedef float V __attribute__((vector_size(64)));
};

// i2s_rescale of N lanes (N a power of two) as one vector expression: the same operations in
// the same order per lane, in the TU's vector registers.
template <int N>
inline void i2s_rescale_lanes(const int32_t* sumi, const int32_t* act_sum, const float* act_scale,
                              float w_scale, float* out) {
  if constexpr (N == 1) {
    out[0] = i2s_rescale(sumi[0], act_sum[0], act_scale[0], w_scale);
  } else {
    using F = typename FloatLanes<N>::V;
    F s, a, d;
    for (int i = 0; i < N; ++i) {
      s[i] = static_cast<float>(sumi[i]);
      a[i] = static_cast<float>(act_sum[i]);
      d[i] = act_scale[i];
    }
    const F r = (s - a) / d * w_scale;
    std::memcpy(out, &r, sizeof r);
  }
}

// Q8_0 dot products follow ggml_vec_dot_q8_0_q8_0 on x86 (the reference build): 8 f32
// lanes, lane l taking block b's integer Σ of elements 4l..4l+3 as
// lane = fma(d_w·d_x, (float)Σ, lane); then the lanes are added by halving (l + l+4,
// l + l+2, l + l+1).
inline constexpr int kQ8Lanes = 8;

// ggml's x86 quantize_row_q8_0 scales: d = max/127 (stored as f16), id = 127/max or 0.
inline float q8_d(float amax) {
  return amax / 127.0f;
}
inline float q8_id(float amax) {
  return amax != 0.0f ? 127.0f / amax : 0.0f;
}

// Calls f(std::integral_constant<int, nt>{}) for a run-time 1 <= nt <= NT.
template <int NT, class F> void with_token_count(int nt, F&& f) {
  if constexpr (NT > 1) {
    if (nt < NT) return with_token_count<NT - 1>(nt, f);
  }
  f(std::integral_constant<int, NT>{});
}

// The I2_S gemm of the SIMD variants. Prefill is compute bound, so the codes of a few rows
// are unpacked once into a panel that stays in L1 and is reused by every token of a token
// block; a register tile of rows × tokens then needs no unpacking and no horizontal sums:
//
//   A panel covers Tile::kRows rows (padded with copies of the last row, whose sums are
//   never stored) and kc inputs as kc/4 steps. Step s holds, for each row j, the codes of
//   inputs 4s..4s+3 as the 4 bytes at panel[(s·kRows + j)·4 ..]. A SIMD vector of a step
//   thus holds whole rows, each lane four codes: the int8 dot instructions (vpdpbusd,
//   vpmaddubsw + vpmaddwd, sdot) multiply it by a token's 4 activations broadcast to every
//   lane, and each lane accumulates one row's sum.
//
// Tile (one per variant) provides:
//   kRows, kTokens, kChunk      rows per panel, tokens per register tile, inputs per panel
//                               (a multiple of kI2sBlock);
//   kChunk3 (optional)          the inputs of one dot when the panel holds code 3, if fewer
//                               than kChunk (int16 sums, below);
//   kPackRows, pack_rows(rows, b, dst)
//                               the 32 steps of block b of kPackRows rows (rows[j] their packed
//                               bytes) into dst, a step's vectors kRows·4 bytes apart;
//   dot<nt>(panel, kc, q, q_stride, sums)
//                               sums[t·kRows + j] += Σ code·q of row j against token t's kc
//                               activations at q + t·q_stride, for t < nt;
//   store(sums, rows, act_sum, act_scale, w_scale, out)
//                               out[j] = i2s_rescale(sums[j], ...) for j < rows.
// The int32 sums are exact, so neither the chunking of k nor the tiling changes a result.
inline constexpr int64_t kI2sTokenBlock = 128; // tokens sharing each panel

// Code 3 is never written by bitnet.cpp, but a damaged file may hold it and every variant
// must still give scalar's integers: a tile whose int16 sums would overflow with it takes a
// panel that holds it in dots of Tile::kChunk3 inputs.
template <class Tile> constexpr int64_t i2s_chunk_code3() {
  if constexpr (requires { Tile::kChunk3; })
    return Tile::kChunk3;
  else
    return Tile::kChunk;
}

// Whether `bytes` (a multiple of 8) of any of `rows` packed rows at w hold code 3.
inline bool i2s_has_code3(const uint8_t* w, int64_t row_bytes, int rows, int64_t bytes) {
  uint64_t both = 0; // bit 2i of a field set when both of its bits are
  for (int j = 0; j < rows; ++j)
    for (int64_t i = 0; i < bytes; i += 8) {
      uint64_t v;
      std::memcpy(&v, w + j * row_bytes + i, sizeof v);
      both |= v & (v >> 1);
    }
  return (both & 0x5555555555555555u) != 0;
}

// Prefetches `bytes` (at most; a multiple of 64) of each of `rows` rows at p.
inline void prefetch_rows(const uint8_t* p, int64_t row_bytes, int64_t rows, int64_t bytes) {
  for (int64_t j = 0; j < rows; ++j)
    for (int64_t off = 0; off < bytes; off += 64)
      __builtin_prefetch(p + j * row_bytes + off);
}

// The panel of rows [0, rows) of the packed rows at w (row r at w + r·row_bytes, the chunk's
// first byte) for kc inputs.
template <class Tile>
void i2s_pack_panel(const uint8_t* w, int64_t row_bytes, int rows, int64_t kc, int8_t* panel) {
  constexpr int64_t kRows = Tile::kRows;
  const uint8_t* row[kRows];
  for (int j = 0; j < kRows; ++j)
    row[j] = w + (j < rows ? j : rows - 1) * row_bytes;
  for (int64_t b = 0; b < kc / kI2sBlock; ++b)
    for (int h = 0; h < kRows / Tile::kPackRows; ++h)
      Tile::pack_rows(row + Tile::kPackRows * h, b,
                      panel + b * 32 * kRows * 4 + h * Tile::kPackRows * 4);
}

// Tile::kStagedTokens (optional, true): dot reads the activations from a staged copy in tiles
// of 16 tokens × 64 inputs (i2s_stage_tokens) instead of from the rows in place.
template <class Tile> constexpr bool i2s_staged_tokens() {
  if constexpr (requires { Tile::kStagedTokens; })
    return Tile::kStagedTokens;
  else
    return false;
}

// 64 bytes: a row of a staged tile. Internal linkage, so its vector is this TU's own code; not
// zeroed on construction (i2s_stage_tokens writes every row that is read).
struct alignas(64) StagedRow {
  StagedRow() {}
  int8_t b[64];
};

// Tokens [t0, t1) of the n tokens of q (k inputs each) in tiles of 16 tokens × 64 inputs (the
// layout of Table::i2s_stage): input i of token t at byte (t / 16)·16·k + (i / 64)·1024 +
// (t % 16)·64 + i % 64 of dst, so the tile of the 16 tokens from t (a multiple of 16) and the
// 64 inputs from i starts at t·k + 16·i. With t1 = n, also the zeros of tokens n up to the next
// multiple of 16.
inline void i2s_stage_tokens(const int8_t* q, int64_t t0, int64_t t1, int64_t n, int64_t k,
                             int8_t* dst) {
  const int64_t groups = k / 64, end = t1 < n ? t1 : (n + 15) / 16 * 16;
  for (int64_t t = t0; t < end; ++t)
    for (int64_t g = 0; g < groups; ++g) {
      int8_t* row = dst + ((t / 16 * groups + g) * 16 + t % 16) * 64;
      if (t < n)
        std::memcpy(row, q + t * k + 64 * g, 64);
      else
        std::memset(row, 0, 64);
    }
}

// `staged`: q's tokens as i2s_stage_tokens lays them out, for a Tile with kStagedTokens (else
// unused).
template <class Tile>
void i2s_gemm_panels(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1,
                     const int8_t* q, const int8_t* staged, const float* act_scale,
                     const int32_t* act_sum, int64_t n_tok, float* out, int64_t ld_out) {
  constexpr int64_t kRows = Tile::kRows;
  constexpr int64_t kChunk = Tile::kChunk;
  constexpr int64_t kChunk3 = i2s_chunk_code3<Tile>();
  static_assert(kChunk % kI2sBlock == 0 && kChunk3 % kI2sBlock == 0);
  alignas(64) int8_t panel[kRows * kChunk];
  alignas(64) int32_t sums[kI2sTokenBlock * kRows];
  const int64_t row_bytes = k / 4;
  constexpr bool kStaged = i2s_staged_tokens<Tile>();
  for (int64_t tb = 0; tb < n_tok; tb += kI2sTokenBlock) {
    const int64_t n_tb = n_tok - tb < kI2sTokenBlock ? n_tok - tb : kI2sTokenBlock;
    for (int64_t rb = r0; rb < r1; rb += kRows) {
      const int rows = r1 - rb < kRows ? static_cast<int>(r1 - rb) : static_cast<int>(kRows);
      std::memset(sums, 0, sizeof(int32_t) * static_cast<size_t>(n_tb * kRows));
      // Each token's outputs of this row block are written once, at its end, into lines not
      // touched since the previous matmul: fetching them now hides those misses behind the
      // block's multiplies.
      for (int64_t t = 0; t < n_tb; ++t) {
        const float* o = out + (tb + t) * ld_out + rb;
        __builtin_prefetch(o, 1);
        __builtin_prefetch(o + rows - 1, 1);
      }
      for (int64_t kb = 0; kb < k; kb += kChunk) {
        const int64_t kc = k - kb < kChunk ? k - kb : kChunk;
        const uint8_t* wc = w + rb * row_bytes + kb / 4;
        i2s_pack_panel<Tile>(wc, row_bytes, rows, kc, panel);
        int64_t piece = kc;
        if constexpr (kChunk3 < kChunk)
          if (i2s_has_code3(wc, row_bytes, rows, kc / 4)) piece = kChunk3;
        // The weights come from memory (each matrix is read once per token block): the
        // next panel's bytes are fetched while this one is multiplied.
        if (kb + kChunk < k)
          prefetch_rows(w + rb * row_bytes + (kb + kChunk) / 4, row_bytes, rows, kChunk / 4);
        else if (rb + kRows < r1)
          prefetch_rows(w + (rb + kRows) * row_bytes, row_bytes, kRows, kChunk / 4);
        for (int64_t p = 0; p < kc; p += piece)
          for (int64_t t = 0; t < n_tb; t += Tile::kTokens) {
            const int nt = n_tb - t < Tile::kTokens ? static_cast<int>(n_tb - t) : Tile::kTokens;
            const int64_t pc = kc - p < piece ? kc - p : piece;
            const int8_t* x =
                kStaged ? staged + (tb + t) * k + 16 * (kb + p) : q + (tb + t) * k + kb + p;
            with_token_count<Tile::kTokens>(nt, [&](auto nt_c) {
              Tile::template dot<decltype(nt_c)::value>(panel + p * kRows, pc, x, k,
                                                        sums + t * kRows);
            });
          }
      }
      for (int64_t t = 0; t < n_tb; ++t)
        Tile::store(sums + t * kRows, rows, act_sum[tb + t], act_scale[tb + t], w_scale,
                    out + (tb + t) * ld_out + rb);
    }
  }
}

// Constants of ggml_v_expf (ggml_expf in kernels_scalar.cpp): log2(e), ln 2 in two parts,
// and the polynomial's coefficients.
inline constexpr float kExpLog2e = 0x1.715476p+0f;
inline constexpr float kExpLn2Hi = 0x1.62e4p-1f;
inline constexpr float kExpLn2Lo = 0x1.7f7d1cp-20f;
inline constexpr float kExpC1 = 0x1.ffffecp-1f;
inline constexpr float kExpC2 = 0x1.fffdb6p-2f;
inline constexpr float kExpC3 = 0x1.555e66p-3f;
inline constexpr float kExpC4 = 0x1.573e2ep-5f;
inline constexpr float kExpC5 = 0x1.0e4020p-7f;

// 2^e as a float for |e| <= 126. x·2^n for |n| <= 192 is x·2^(n/2)·2^(n - n/2): the first
// product is exact, so the result is rounded once, as vscalefps rounds it.
inline float pow2_float(int32_t e) {
  const uint32_t bits = static_cast<uint32_t>(e + 127) << 23;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// F16 dot products follow ggml_vec_dot_f16 as the reference build (AVX-512) runs it:
// element i of each chunk of 64 goes to lane i of four 16-lane accumulators (products of
// two f16 values are exact in f32, so multiply-add and FMA agree); the accumulators are
// combined as (a0 + a2) + (a1 + a3), the 16 lanes reduced by halving (8, 4, 2, 1); the
// n % 64 leftover products are added in double. kF16Chunk is that chunk.
inline constexpr int64_t kF16Chunk = 64;

// The leftover of an F16 dot: `head` (the reduced chunks) plus each product of elements
// [i, n) in double. to_f32 converts one half.
template <class ToF32>
inline float f16_dot_tail(float head, const uint16_t* a, const uint16_t* b, int64_t i, int64_t n,
                          ToF32 to_f32) {
  double sum = head;
  for (; i < n; ++i)
    sum += static_cast<double>(to_f32(a[i]) * to_f32(b[i]));
  return static_cast<float>(sum);
}

// The same leftover with an f32 operand x (f16_dots): each product rounded to float first.
template <class ToF32>
inline float f16_dot_tail(float head, const uint16_t* a, const float* x, int64_t i, int64_t n,
                          ToF32 to_f32) {
  double sum = head;
  for (; i < n; ++i)
    sum += static_cast<double>(to_f32(a[i]) * x[i]);
  return static_cast<float>(sum);
}

// One RoPE pair as ggml's compiler contracts the rotation (kernels.hpp). __builtin_fmaf, not
// std::fma: a library inline function could be merged across the ISA TUs (see above).
inline void rope_rotate(float* x0, float* x1, float c, float s) {
  const float a = *x0, b = *x1;
  *x0 = __builtin_fmaf(a, c, -(b * s));
  *x1 = __builtin_fmaf(a, s, b * c);
}

// Visits rows [r0, r1) as NS streams: group(r, stride) for each r of the first stride rows,
// the group being rows r + j·stride (j < NS), then the rows left over one at a time, single(r).
// A matrix-vector product then reads its weights as NS sequential streams in different pages,
// which keeps more memory reads in flight on one core than one stream does (bench_kernels,
// same run: I2_S and F16 gemv from ~65-78% to ~85-95% of the streaming-read probe with two).
template <int NS, class Group, class Single>
void for_row_streams(int64_t r0, int64_t r1, Group group, Single single) {
  const int64_t stride = (r1 - r0) / NS;
  for (int64_t i = 0; i < stride; ++i)
    group(r0 + i, stride);
  for (int64_t r = r0 + NS * stride; r < r1; ++r)
    single(r);
}

// Streams of a gemv whose kernel takes several rows at once (the AVX2 and AVX-512 I2_S gemv,
// the Q8_0 head screen): four kept 1.07-1.3x the bytes per second of two (2 threads, a 1 GiB pool,
// same run), eight no more than four.
inline constexpr int kGemvStreams = 4;

// The I2_S gemm of one token (the AVX2 and AVX-512 gemv) or of a few (NT, AVX-512's batched
// decode step) with a kernel that takes several rows: rows_dot(
// std::integral_constant<int, nr>, rows, sums) writes Σ code·q of nr rows (pointers
// rows[0..nr)) against the NT tokens (row j, token t to sums[j·NT + t]); a call takes one row of
// each of NR of the kGemvStreams streams. Token t's output row r goes to out[t·ld_out + r].
template <int NR, int NT, class RowsDot>
void i2s_gemm_streams(RowsDot rows_dot, const uint8_t* w, float w_scale, int64_t k, int64_t r0,
                      int64_t r1, const float* act_scale, const int32_t* act_sum, float* out,
                      int64_t ld_out) {
  static_assert(kGemvStreams % NR == 0);
  const int64_t stride = k / 4;
  // A call's rescales as one vector operation per step over its sums, each lane with its
  // token's operands (one at a time, 4 rows x 4 tokens cost 16 divisions in turn: 4 % of a
  // batched decode step's time). Lanes past the sums, padding to a power of two, take a
  // token's operands too; their results are not stored.
  constexpr int kLanes = static_cast<int>(std::bit_ceil(static_cast<unsigned>(NR * NT)));
  int32_t sum_of[kLanes];
  float scale_of[kLanes];
  for (int i = 0; i < kLanes; ++i) {
    sum_of[i] = act_sum[i % NT];
    scale_of[i] = act_scale[i % NT];
  }
  const auto call = [&](auto nr_c, const int64_t* r) {
    constexpr int nr = decltype(nr_c)::value;
    constexpr int n = static_cast<int>(std::bit_ceil(static_cast<unsigned>(nr * NT)));
    const uint8_t* rows[nr];
    for (int j = 0; j < nr; ++j)
      rows[j] = w + r[j] * stride;
    int32_t sums[n] = {};
    rows_dot(nr_c, rows, sums);
    float res[n];
    i2s_rescale_lanes<n>(sums, sum_of, scale_of, w_scale, res);
    for (int j = 0; j < nr; ++j)
      for (int t = 0; t < NT; ++t)
        out[t * ld_out + r[j]] = res[j * NT + t];
  };
  for_row_streams<kGemvStreams>(
      r0, r1,
      [&](int64_t r, int64_t gap) {
        for (int j = 0; j < kGemvStreams; j += NR) {
          int64_t rs[NR];
          for (int i = 0; i < NR; ++i)
            rs[i] = r + (j + i) * gap;
          call(std::integral_constant<int, NR>{}, rs);
        }
      },
      [&](int64_t r) { call(std::integral_constant<int, 1>{}, &r); });
}

// The gemv: all kGemvStreams rows of a group in one call.
template <class RowsDot>
void i2s_gemv_streams(RowsDot rows_dot, const uint8_t* w, float w_scale, int64_t k, int64_t r0,
                      int64_t r1, float act_scale, int32_t act_sum, float* out) {
  i2s_gemm_streams<kGemvStreams, 1>(rows_dot, w, w_scale, k, r0, r1, &act_scale, &act_sum, out, 0);
}

// A few tokens (a server's batched decode step) cost less as rows of dots than through the
// panels: packing a panel costs more than the few tokens save (AVX-512, one thread, 2560-input
// rows, same run: 4 tokens 0.70x and 2 tokens 0.64x the panels' time, 8 tokens 1.13x).
inline constexpr int kRowDotTokens = 4;

// The I2_S gemm of a variant with a panel tile and a rows-of-dots kernel for a few tokens: up
// to kRowDotTokens tokens go on the gemv's streams, NR rows per call (all kGemvStreams for
// one token), rows_dot(std::integral_constant<int, nr>, std::integral_constant<int, nt>,
// rows, sums) writing as i2s_gemm_streams' rows_dot for nt tokens; more go through the panels.
template <class Tile, int NR, class RowsDot>
void i2s_gemm_rows_or_panels(RowsDot rows_dot, const uint8_t* w, float w_scale, int64_t k,
                             int64_t r0, int64_t r1, const int8_t* q, const float* act_scale,
                             const int32_t* act_sum, int64_t n_tok, float* out, int64_t ld_out) {
  if (n_tok > kRowDotTokens) {
    i2s_gemm_panels<Tile>(w, w_scale, k, r0, r1, q, nullptr, act_scale, act_sum, n_tok, out,
                          ld_out);
    return;
  }
  with_token_count<kRowDotTokens>(static_cast<int>(n_tok), [&](auto nt_c) {
    constexpr int nt = decltype(nt_c)::value;
    i2s_gemm_streams<nt == 1 ? kGemvStreams : NR, nt>(
        [&](auto nr_c, const uint8_t* const* rows, int32_t* sums) {
          rows_dot(nr_c, nt_c, rows, sums);
        },
        w, w_scale, k, r0, r1, act_scale, act_sum, out, ld_out);
  });
}

// The attention dots (f16_dots, f16_f32_dots) of a variant that takes them one at a time:
// out[i·ld_out + r] = dot(row r of a, vector i of x, n).
template <auto dot>
void dots_each(const uint16_t* a, int64_t lda, int64_t n_rows, const float* x, int64_t ldx,
               int64_t n_x, int64_t n, float* out, int64_t ld_out) {
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t i = 0; i < n_x; ++i)
      out[i * ld_out + r] = dot(a + r * lda, x + i * ldx, n);
}

// Table::head_dots through a variant's f16_dots (or a function of its signature): blocks of 4
// keys, each block's KV heads in turn (a head's part of the 4 keys at a time, so within a block
// the rows are not read in address order: head_dots_by_keys is), each call's prefetches of the
// rows below (its head's part of them) together fetching later blocks' rows whole.
template <auto dots>
void head_dots_by(const uint16_t* k, int64_t ldk, int64_t n_keys, int64_t n_head_kv, int64_t group,
                  const float* x, int64_t n, float* out, int64_t ld_out) {
  for (int64_t j = 0; j < n_keys; j += 4)
    for (int64_t g = 0; g < n_head_kv; ++g)
      dots(k + j * ldk + g * n, ldk, n_keys - j < 4 ? n_keys - j : 4, x + g * group * n, n, group,
           n, out + g * group * ld_out + j, ld_out);
}

// Table::head_dots of a variant with blocks of a KV head's dots, 4 keys × its 4 query heads,
// where `fits` (the variant's head sizes) and at most 8 KV heads: the keys in blocks of 4, each
// key's heads in turn, so the cache is read in address order. A Block (per KV head, in
// registers or on the stack) takes key m's part of head g with add(m, key, below, x, ldx): its
// dots with the head's vectors x + i·ldx, prefetching `below`, the same part of the key a block
// later; store(o, ld_out) writes the 16 dots (key m, vector q) to o[q·ld_out + m]. Any other
// shape, and the keys past the last block, through head_dots_by<dots>. Against head_dots_by
// (4 keys of one head at a time), per-layer K·q at depth 2048, 2 threads, timed inside the
// decode: AVX-512 1.2x, AVX2 1.3x (4 alternations each).
template <class Block, auto dots>
void head_dots_by_keys(bool fits, const uint16_t* k, int64_t ldk, int64_t n_keys, int64_t n_head_kv,
                       int64_t group, const float* x, int64_t n, float* out, int64_t ld_out) {
  constexpr int64_t kMaxKvHeads = 8;
  const int64_t blocks = fits && group == 4 && n_head_kv <= kMaxKvHeads ? n_keys / 4 * 4 : 0;
  for (int64_t j = 0; j < blocks; j += 4) {
    Block b[kMaxKvHeads];
    for (int m = 0; m < 4; ++m) {
      const uint16_t* key = k + (j + m) * ldk;
      for (int64_t g = 0; g < n_head_kv; ++g)
        b[g].add(m, key + g * n, key + 4 * ldk + g * n, x + g * group * n, n);
    }
    for (int64_t g = 0; g < n_head_kv; ++g)
      b[g].store(out + g * group * ld_out + j, ld_out);
  }
  head_dots_by<dots>(k + blocks * ldk, ldk, n_keys - blocks, n_head_kv, group, x, n, out + blocks,
                     ld_out);
}

// The dots that blocks of rows [r0, rows4) × vectors [0, xs4) leave, one at a time: one(r, i)
// to out[i·ld_out + r] for the vectors from xs4 of those rows and every vector of the rows
// from rows4.
template <class One>
void dots_left_over(One one, int64_t r0, int64_t rows4, int64_t xs4, int64_t n_rows, int64_t n_x,
                    float* out, int64_t ld_out) {
  for (int64_t r = r0; r < n_rows; ++r)
    for (int64_t i = r < rows4 ? xs4 : 0; i < n_x; ++i)
      out[i * ld_out + r] = one(r, i);
}

// The attention dots of a variant that takes them in blocks of 4 rows × 4 vectors, rows r0..:
// block(r, i, o) writes the 16 dots of rows r.. and vectors i.. to o[q·ld_out + m] (row r + m,
// vector i + q); the rows and vectors left over go one dot at a time, one(r, i).
template <class Block, class One>
void dots_blocked(Block block, One one, int64_t n_rows, int64_t n_x, float* out, int64_t ld_out,
                  int64_t r0 = 0) {
  const int64_t rows4 = r0 + (n_rows - r0) / 4 * 4, xs4 = n_x / 4 * 4;
  for (int64_t r = r0; r < rows4; r += 4)
    for (int64_t i = 0; i < xs4; i += 4)
      block(r, i, out + i * ld_out + r);
  dots_left_over(one, r0, rows4, xs4, n_rows, n_x, out, ld_out);
}

// Elements of a block's rows summed before it moves on to its next row (AVX2's f16_dots and
// f16_f32_dots): the block's 4 × kDotsSpan floats of x stay in L1 while each row takes them
// (V·p at long contexts: x would otherwise come from L2 once per row). Rows up to this long
// are one span (K·q); AVX-512 sums longer rows whole, or in spans past 3072 (whole_rows).
inline constexpr int64_t kDotsSpan = 512;

// How a block of those dots goes through its R rows: `len` elements of each at a time
// (kDotsSpan, or AVX-512's whole_rows' spans). span(m, k0, k1) sums elements [k0, k1) of row m.
template <int R, class Span> inline void for_block_spans(int64_t np, int64_t len, Span span) {
  for (int64_t k0 = 0; k0 < np; k0 += len)
    for (int m = 0; m < R; ++m)
      span(m, k0, k0 + len < np ? k0 + len : np);
}

// Rows that AVX2's f16_f32_dots over rows longer than a span (a batch's ·V) take together per
// pass through each span, where a call has that many (a KV head's 128 value rows), so the span's
// floats of four vectors come from L2 once per 16 rows instead of once per block of 4.
inline constexpr int64_t kLongRows = 16;

// dots_blocked, the rows first taken kLongRows at a time for each block of 4 vectors by
// pass(r, i, o) (writing as block does, for kLongRows rows) when `passes` (rows longer than a
// span).
template <class Pass, class Block, class One>
void dots_in_passes(bool passes, Pass pass, Block block, One one, int64_t n_rows, int64_t n_x,
                    float* out, int64_t ld_out) {
  const int64_t wide = passes && n_x % 4 == 0 ? n_rows / kLongRows * kLongRows : 0;
  for (int64_t r = 0; r < wide; r += kLongRows)
    for (int64_t i = 0; i < n_x; i += 4)
      pass(r, i, out + i * ld_out + r);
  dots_blocked(block, one, n_rows, n_x, out, ld_out, wide);
}

// What f16_dots prefetches while it sums the chunk at element k of row a (np elements summed):
// the row kDotsSpan elements ahead, past its end continuing into `next` (the row read after it;
// null: none), so the rows stream in while earlier spans are summed; rows shorter than that
// (K·q) give `next` at the chunk's offset. Null: nothing.
inline const uint16_t* dots_prefetch_at(const uint16_t* a, const uint16_t* next, int64_t np,
                                        int64_t k) {
  const int64_t ka = k + kDotsSpan;
  return ka < np ? a + ka : !next ? nullptr : next + (ka - np < np ? ka - np : k);
}

// The F16 gemm of every variant (f16_gemm): output (row r, token t) is dot(row r of w, token
// t's f16-rounded operand x + t·k, k). A single token reads the rows as two streams.
template <auto dot>
void f16_gemm_rows(const uint16_t* w, int64_t k, int64_t r0, int64_t r1, const uint16_t* x,
                   int64_t n_tok, float* out, int64_t ld_out) {
  if (n_tok == 1) {
    const auto one = [&](int64_t r) { out[r] = dot(w + r * k, x, k); };
    for_row_streams<2>(
        r0, r1,
        [&](int64_t r, int64_t stride) {
          one(r);
          one(r + stride);
        },
        one);
    return;
  }
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t t = 0; t < n_tok; ++t)
      out[t * ld_out + r] = dot(w + r * k, x + t * k, k);
}

// A variant's F16 entries from its two dots: the dots and the gemm loop around f16_dot.
template <auto f16_dot, auto f16_f32_dot> void set_f16_entries(Table& t) {
  t.f16_dot = f16_dot;
  t.f16_gemm = f16_gemm_rows<f16_dot>;
  t.f16_f32_dot = f16_f32_dot;
}

// The Q8_0 gemm loop of every variant: output (row r, token t) is the Q8_0 dot of row r of w
// and token t's blocks of xq. rows_dot(std::integral_constant<int, nr>, rows, x, nb, out)
// writes the dots of nr rows (pointers rows[0..nr)) with one operand x of nb blocks. A single
// token (the head screen) reads the rows as kGemvStreams streams, a row of each per call.
template <class RowsDot>
void q8_0_gemm_rows(RowsDot rows_dot, const uint8_t* w, int64_t k, int64_t r0, int64_t r1,
                    const uint8_t* xq, int64_t n_tok, float* out, int64_t ld_out) {
  const int64_t nb = k / kQ8Block;
  const int64_t row_bytes = nb * kQ8BlockBytes;
  const auto one = [&](int64_t r, int64_t t) {
    const uint8_t* row[1] = {w + r * row_bytes};
    rows_dot(std::integral_constant<int, 1>{}, row, xq + t * row_bytes, nb, out + t * ld_out + r);
  };
  if (n_tok == 1) {
    for_row_streams<kGemvStreams>(
        r0, r1,
        [&](int64_t r, int64_t stride) {
          const uint8_t* rows[kGemvStreams];
          for (int j = 0; j < kGemvStreams; ++j)
            rows[j] = w + (r + j * stride) * row_bytes;
          float o[kGemvStreams];
          rows_dot(std::integral_constant<int, kGemvStreams>{}, rows, xq, nb, o);
          for (int j = 0; j < kGemvStreams; ++j)
            out[r + j * stride] = o[j];
        },
        [&](int64_t r) { one(r, 0); });
    return;
  }
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t t = 0; t < n_tok; ++t)
      one(r, t);
}

} // namespace
} // namespace bitnet::kernels
