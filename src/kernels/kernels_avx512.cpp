// AVX-512 F+BW+VL+VNNI kernels (compiled with BITNET_FLAGS_AVX512; used only on CPUs that
// have them). The I2_S dot product is vpdpbusd: unsigned codes 0..3 times signed int8
// activations, four products summed into each int32 lane without saturation, so the sums
// equal the scalar reference exactly. Entries not worth widening come from the AVX2 table.
#include "kernels/avx512_common.hpp"

#include <algorithm>
#include <vector>

#include "kernels/kernel_common.hpp"
#include "kernels/variants.hpp"
#include "kernels/vec_ops.hpp"

namespace bitnet::kernels {
namespace {

// Lane adds for the halving sums below: of floats, or of the int32 the vectors hold.
struct AddFloats {
  __m512 operator()(__m512 a, __m512 b) const { return _mm512_add_ps(a, b); }
};
struct AddInts {
  __m512 operator()(__m512 a, __m512 b) const {
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
  }
};

// The first two halving steps (l + l+8, l + l+4) of four vectors, as _mm512_reduce_add_ps
// adds its lanes: quarter j of the result holds v[j]'s four partial sums.
template <class Add = AddFloats> inline __m512 reduce4(const __m512* v, Add add = {}) {
  __m512 u[2];
  for (int k = 0; k < 2; ++k) // l + l+8: v[2k] in lanes 0-7, v[2k+1] in 8-15
    u[k] = add(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44),
               _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE));
  // l + l+4: quarter j holds v[j]
  return add(_mm512_shuffle_f32x4(u[0], u[1], 0x88), _mm512_shuffle_f32x4(u[0], u[1], 0xDD));
}

// The last two halving steps (l + l+2, l + l+1) of four reduce4 results: lane 4q + m of the
// result is the sum of the vector in quarter q of w[m].
template <class Add = AddFloats> inline __m512 finish16(const __m512* w, Add add = {}) {
  __m512 z[2];
  for (int k = 0; k < 2; ++k) { // l + l+2: quarter j holds w[2k]'s, then w[2k+1]'s
    const __m512d a = _mm512_castps_pd(w[2 * k]), b = _mm512_castps_pd(w[2 * k + 1]);
    z[k] =
        add(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  // l + l+1: quarter j holds w[0..3]'s
  return add(_mm512_shuffle_ps(z[0], z[1], 0x88), _mm512_shuffle_ps(z[0], z[1], 0xDD));
}

// The halving sums of 16 vectors at once: lane 4q + m of the result is the sum of v[4m + q].
template <class Add = AddFloats> inline __m512 reduce16(const __m512* v, Add add = {}) {
  __m512 w[4];
#pragma GCC unroll 4
  for (int m = 0; m < 4; ++m)
    w[m] = reduce4(v + 4 * m, add);
  return finish16(w, add);
}

// The codes of I2_S block b at w, in input order and scaled by a power of two: a block's 32
// bytes are broadcast to both 256-bit halves and masked to one 2-bit field per half, left in
// place, so c01's low half holds 64·code of elements j, its high half 16·code of 32 + j (c23:
// 4·code of 64 + j, code of 96 + j), i.e. elements 0..63 and 64..127, which line up with two
// plain 64-byte loads of the activations. Masks alone, no shifts: each lane's sum is a
// multiple of its scale, undone exactly at the end (i2s_lane_sums).
inline void i2s_block_codes(const uint8_t* w, int64_t b, __m512i& c01, __m512i& c23) {
  const __m512i mask01 =
      _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(0xC0)), _mm256_set1_epi8(0x30), 1);
  const __m512i mask23 = _mm512_inserti64x4(_mm512_set1_epi8(0x0C), _mm256_set1_epi8(0x03), 1);
  _mm_prefetch(reinterpret_cast<const char*>(w + b * 32 + kI2sPrefetchBytes), _MM_HINT_T0);
  const __m512i packed = _mm512_broadcast_i64x4(load256(w + b * 32));
  c01 = _mm512_and_si512(packed, mask01);
  c23 = _mm512_and_si512(packed, mask23);
}

// a01's lanes (products with c01's codes, summed) each shifted back by its scale: exact, the
// sum being a multiple of it.
inline __m512i i2s_lane_scales(__m512i a01) {
  return _mm512_srav_epi32(a01, _mm512_inserti64x4(_mm512_set1_epi32(6), _mm256_set1_epi32(4), 1));
}
// Σ code·q of the lanes of a01 and a23 (i2s_block_codes' products summed): each lane shifted
// back by its scale, then added. A lane sums k/32 products of at most 192·128, so it stays in
// int32 for k < 2^21.
inline int32_t i2s_lane_sums(__m512i a01, __m512i a23) {
  const __m512i shift23 = _mm512_inserti64x4(_mm512_set1_epi32(2), _mm256_set1_epi32(0), 1);
  return _mm512_reduce_add_epi32(
      _mm512_add_epi32(i2s_lane_scales(a01), _mm512_srav_epi32(a23, shift23)));
}

// acc += u·s, four products per int32 lane (vpdpbusd). Through asm: around each
// _mm512_dpbusd_epi32 in a loop GCC 12 copies the accumulator to another register and back
// (objdump), as many instructions as the multiplies themselves once several tokens share the
// codes. "vm": the activations are read by the instruction itself.
inline void dpbusd(__m512i& acc, __m512i u, __m512i s) {
  __asm__("vpdpbusd %[s], %[u], %[acc]" : [acc] "+v"(acc) : [u] "v"(u), [s] "vm"(s));
}

// Block b of NR rows against one token into acc (i2s_row_dots).
template <int NR>
__attribute__((always_inline)) inline void i2s_block_dots(const uint8_t* const* w, int64_t b,
                                                          const int8_t* q, __m512i (&acc)[NR][2]) {
  __m512i c01[NR], c23[NR];
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r)
    i2s_block_codes(w[r], b, c01[r], c23[r]);
  const int8_t* qb = q + b * kI2sBlock;
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r) {
    dpbusd(acc[r][0], c01[r], load512(qb));
    dpbusd(acc[r][1], c23[r], load512(qb + 64));
  }
}

// Σ code·q of NR I2_S rows (row r at w[r], k inputs) against one token's activations q (row r
// to sums[r]; the gemv). One row alone gives consecutive blocks to two accumulator sets, so
// that vpdpbusd's latency chains overlap (integer sums: the order is irrelevant); several
// rows' chains overlap one another. Not inlined: inside the gemv's lambdas GCC keeps the
// accumulators on the stack.
template <int NR>
__attribute__((noinline)) void i2s_row_dots(const uint8_t* const* w, int64_t k, const int8_t* q,
                                            int32_t* sums) {
  constexpr int kSets = NR == 1 ? 2 : 1;
  // Every loop over the accumulators unrolled, so that they stay in registers.
  __m512i acc[kSets][NR][2];
#pragma GCC unroll 16
  for (int s = 0; s < kSets; ++s)
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r)
      acc[s][r][0] = acc[s][r][1] = _mm512_setzero_si512();
  const int64_t nb = k / kI2sBlock;
  int64_t b = 0;
  for (; b + kSets <= nb; b += kSets)
#pragma GCC unroll 2
    for (int s = 0; s < kSets; ++s)
      i2s_block_dots<NR>(w, b + s, q, acc[s]);
  for (; b < nb; ++b)
    i2s_block_dots<NR>(w, b, q, acc[0]);
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r) {
    __m512i a01 = acc[0][r][0], a23 = acc[0][r][1];
    if constexpr (kSets == 2) {
      a01 = _mm512_add_epi32(a01, acc[1][r][0]);
      a23 = _mm512_add_epi32(a23, acc[1][r][1]);
    }
    sums[r] = i2s_lane_sums(a01, a23);
  }
}

// Σ code·q of NR I2_S rows for NT > 1 tokens at once (token t's activations at q + t·k; row r,
// token t to sums[r·NT + t]): each row's codes unpacked once for all tokens, each activation
// vector loaded once for all rows, one accumulator per row and token (4 rows × 4 tokens: 16
// of the 32 zmm, the 8 code vectors and an activation vector beside them). Not inlined, as
// i2s_row_dots.
template <int NR, int NT>
__attribute__((noinline)) void i2s_rows_tokens_dots(const uint8_t* const* w, int64_t k,
                                                    const int8_t* q, int32_t* sums) {
  static_assert(NT > 1);
  __m512i acc[NR][NT];
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
    for (int t = 0; t < NT; ++t)
      acc[r][t] = _mm512_setzero_si512();
  const int64_t nb = k / kI2sBlock;
  // Two blocks per iteration: 4 rows x 4 tokens ran 1.04-1.16x faster in bench_kernels at one
  // thread (weights from memory) and the 2B-4T batched step of 4 sequences 1.08x (bench_batch,
  // 8 alternated pairs). In a harness, 4 blocks or software-pipelined weight loads gained nothing.
#pragma GCC unroll 2
  for (int64_t b = 0; b < nb; ++b) {
    __m512i c01[NR], c23[NR];
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) {
      i2s_block_codes(w[r], b, c01[r], c23[r]);
      // c23's codes moved up to c01's scales (64·code in the low half, 16·code in the high):
      // both then go into one accumulator, which halves the accumulators of the dot.
      c23[r] = _mm512_slli_epi16(c23[r], 4);
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const int8_t* qb = q + t * k + b * kI2sBlock;
      const __m512i q01 = load512(qb);
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r)
        dpbusd(acc[r][t], c01[r], q01);
      const __m512i q23 = load512(qb + 64);
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r)
        dpbusd(acc[r][t], c23[r], q23);
    }
  }
  if constexpr (NR * NT == 16) {
    // All 16 sums in one vector and one store: i2s_gemm_streams loads them as one vector,
    // which 16 stores of one sum each stalled (bench_batch -n 4, 8 pairs: 1.044x).
    __m512 v[16]; // sum i = r·NT + t reduced from v[4·(i % 4) + i / 4] (reduce16's lanes)
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i)
      v[4 * (i % 4) + i / 4] = _mm512_castsi512_ps(i2s_lane_scales(acc[i / NT][i % NT]));
    _mm512_storeu_si512(sums, _mm512_castps_si512(reduce16(v, AddInts{})));
  } else {
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
      for (int t = 0; t < NT; ++t)
        sums[r * NT + t] = _mm512_reduce_add_epi32(i2s_lane_scales(acc[r][t]));
  }
}

void i2s_gemv(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1, const int8_t* q,
              float act_scale, int32_t act_sum, float* out) {
  i2s_gemv_streams([&](auto nr, const uint8_t* const* rows,
                       int32_t* sums) { i2s_row_dots<decltype(nr)::value>(rows, k, q, sums); },
                   w, w_scale, k, r0, r1, act_scale, act_sum, out);
}

// The gemm's register tile (kernel_common.hpp, i2s_gemm_panels) on I2sPanel's 32 rows (two
// zmm of 16 rows × 4 codes) × 12 tokens. Per step, 2 panel loads and 12 broadcast loads feed
// 24 vpdpbusd into 24 accumulators; with the 2 panel vectors and the broadcast that is 27 of
// the 32 zmm registers.
struct I2sTile : I2sPanel {
  static constexpr int kTokens = 12;
  static constexpr int64_t kChunk = 512; // a 16 KiB panel

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
};

// Several tokens take four rows per call, one of each of the gemv's streams: each activation
// vector then serves four rows, loaded once into a register (i2s_rows_tokens_dots; 4 tokens,
// 6912x2560 and 2560x6912, 1 and 2 threads, bench_kernels alternated with two rows per call
// and two accumulators per row and token, 5 pairs: median 1.34-1.68x the bytes per second).
void i2s_gemm(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1, const int8_t* q,
              const float* act_scale, const int32_t* act_sum, int64_t n_tok, float* out,
              int64_t ld_out) {
  i2s_gemm_rows_or_panels<I2sTile, kGemvStreams>(
      [&](auto nr_c, auto nt_c, const uint8_t* const* rows, int32_t* sums) {
        constexpr int nr = decltype(nr_c)::value, nt = decltype(nt_c)::value;
        if constexpr (nt == 1)
          i2s_row_dots<nr>(rows, k, q, sums);
        else
          i2s_rows_tokens_dots<nr, nt>(rows, k, q, sums);
      },
      w, w_scale, k, r0, r1, q, act_scale, act_sum, n_tok, out, ld_out);
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

// Sixteen elements of an attention dot's vector operand as floats: f32, or F16 widened.
inline __m512 load16(const float* p) {
  return _mm512_loadu_ps(p);
}
inline __m512 load16(const uint16_t* p) {
  return load_ph16(p);
}
inline float to_f32(float v) {
  return v;
}
inline float to_f32(uint16_t h) {
  return _cvtsh_ss(h);
}

// Σ w[i]·x[i] in ggml_vec_dot_f16's order (kernel_common.hpp): the reference's own code
// path, four 16-lane accumulators and _mm512_reduce_add_ps.
float f16_dot(const uint16_t* w, const uint16_t* x, int64_t k) {
  __m512 acc[4];
  for (__m512& a : acc)
    a = _mm512_setzero_ps();
  const int64_t np = k / kF16Chunk * kF16Chunk;
  for (int64_t i = 0; i < np; i += kF16Chunk) {
    _mm_prefetch(reinterpret_cast<const char*>(w + i + kF16PrefetchHalves), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(w + i + 32 + kF16PrefetchHalves), _MM_HINT_T0);
    for (int j = 0; j < 4; ++j)
      acc[j] = _mm512_fmadd_ps(load_ph16(w + i + 16 * j), load_ph16(x + i + 16 * j), acc[j]);
  }
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

// NR Q8_0 rows against NP token pairs (pair p: token 2p in the low 8 lanes, 2p + 1 in the
// high 8; row r, pair p to out[r·NP + p]), each row block loaded and widened once for all
// pairs and each pair's operands loaded once for all rows. vpsignb has no 512-bit
// form, so the exact int32 sums come from the weights offset to unsigned:
// Σ w·x = Σ (w + 128)·x − 128·Σ x, the second term per lane (4 operands) made when the pair
// is packed and taken as vpdpbusd's starting value. Each lane then accumulates as
// q8_0_rows_dot's lane does (the same d_w·d_x product, the same fma per block), so every
// output is bit for bit that of its token alone.
struct alignas(64) Q8TokenPair {
  int8_t x[64];     // both tokens' 32 operand bytes of a block
  int32_t bias[16]; // −128 · the sum of each lane's 4 operands
  float dx[16];     // the tokens' scales, each in 8 lanes
};

template <int NR, int NP>
void q8_0_row_pairs(const uint8_t* const* rows, int64_t nb, const Q8TokenPair* x, __m512* out) {
  const __m512i offset = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[NR][NP]; // local, so the chains stay in registers (not in *out) across blocks
  for (auto& row : acc)
    for (__m512& a : row)
      a = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m512i wu[NR];
    __m512 dw[NR];
    for (int r = 0; r < NR; ++r) {
      const uint8_t* wb = rows[r] + b * kQ8BlockBytes;
      _mm_prefetch(reinterpret_cast<const char*>(wb + kQ8PrefetchBytes), _MM_HINT_T0);
      wu[r] = _mm512_xor_si512(_mm512_broadcast_i64x4(load256(wb + 2)), offset);
      dw[r] = _mm512_set1_ps(q8_block_scale(wb));
    }
    for (int i = 0; i < NP; ++i) {
      const Q8TokenPair& xb = x[i * nb + b];
      const __m512i bias = _mm512_load_si512(xb.bias), xv = _mm512_load_si512(xb.x);
      const __m512 dx = _mm512_load_ps(xb.dx);
      for (int r = 0; r < NR; ++r)
        acc[r][i] =
            _mm512_fmadd_ps(_mm512_mul_ps(dw[r], dx),
                            _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(bias, wu[r], xv)), acc[r][i]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int i = 0; i < NP; ++i)
      out[r * NP + i] = acc[r][i];
}

// vpdpbusd (256-bit, VL) for AVX2's maddubs + madd: four products per int32 lane with no
// int16 step, the same exact sums. Several tokens (a batched head screen, a Q8_0 head's
// prefill logits) share each row's loads: compute, not memory, bounds them one at a time.
void q8_0_gemm(const uint8_t* w, int64_t k, int64_t r0, int64_t r1, const uint8_t* xq,
               int64_t n_tok, float* out, int64_t ld_out) {
  if (n_tok == 1) {
    q8_0_gemm_avx(
        [](__m256i uw, __m256i sx) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), uw, sx); },
        w, k, r0, r1, xq, n_tok, out, ld_out);
    return;
  }
  const int64_t nb = k / kQ8Block, row_bytes = nb * kQ8BlockBytes;
  const int64_t n_pairs = (n_tok + 1) / 2;
  // Per pair and block (an odd count's last pair repeats its token; that half is never
  // stored).
  std::vector<Q8TokenPair> x(static_cast<size_t>(n_pairs * nb));
  const __m512i offset = _mm512_set1_epi8(static_cast<char>(0x80)); // 128 as unsigned
  for (int64_t p = 0; p < n_pairs; ++p)
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* lo = xq + 2 * p * row_bytes + b * kQ8BlockBytes;
      const uint8_t* hi = 2 * p + 1 < n_tok ? lo + row_bytes : lo;
      Q8TokenPair& xb = x[static_cast<size_t>(p * nb + b)];
      const __m512i xv =
          _mm512_inserti64x4(_mm512_castsi256_si512(load256(lo + 2)), load256(hi + 2), 1);
      _mm512_store_si512(xb.x, xv);
      const __m512i zero = _mm512_setzero_si512();
      _mm512_store_si512(xb.bias, _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, offset, xv)));
      _mm256_store_ps(xb.dx, _mm256_set1_ps(q8_block_scale(lo)));
      _mm256_store_ps(xb.dx + 8, _mm256_set1_ps(q8_block_scale(hi)));
    }
  // A row of each of the single-token screen's kGemvStreams streams per call, each pair's
  // operands loaded once for all of them. (bench_batch -n 4 under perf, cpu-clock samples of
  // q8_0_gemm at fixed work, alternated runs: four rows per call ~0.8-0.9x the samples of
  // two; two rows per call were 0.57-0.59 of the unchanged i2s_gemm's samples, one 0.64-0.75.)
  constexpr int kPairs = 4; // pairs per pass over a row
  const auto store = [&](int64_t r, int64_t p0, int np, const __m512* acc) {
    for (int i = 0; i < np; ++i) {
      const int64_t t = 2 * (p0 + i);
      out[t * ld_out + r] = hsum_ps(_mm512_castps512_ps256(acc[i]));
      if (t + 1 < n_tok)
        out[(t + 1) * ld_out + r] =
            hsum_ps(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[i]), 1)));
    }
  };
  const auto pass = [&](auto nr_c, const int64_t* r) {
    constexpr int nr = decltype(nr_c)::value;
    const uint8_t* rows[nr];
    for (int j = 0; j < nr; ++j)
      rows[j] = w + r[j] * row_bytes;
    for (int64_t p0 = 0; p0 < n_pairs; p0 += kPairs) {
      __m512 acc[nr * kPairs]; // row j's pairs from acc + j·np
      const int np = static_cast<int>(std::min<int64_t>(kPairs, n_pairs - p0));
      with_token_count<kPairs>(np, [&](auto np_c) {
        q8_0_row_pairs<nr, decltype(np_c)::value>(rows, nb, x.data() + p0 * nb, acc);
      });
      for (int j = 0; j < nr; ++j)
        store(r[j], p0, np, acc + j * np);
    }
  };
  for_row_streams<kGemvStreams>(
      r0, r1,
      [&](int64_t r, int64_t gap) {
        int64_t rs[kGemvStreams];
        for (int j = 0; j < kGemvStreams; ++j)
          rs[j] = r + j * gap;
        pass(std::integral_constant<int, kGemvStreams>{}, rs);
      },
      [&](int64_t r) { pass(std::integral_constant<int, 1>{}, &r); });
}

// ---- attention ---------------------------------------------------------------------------

// The vector ops of softmax, RoPE and key_tile_dots (vec_ops.hpp) on 16 lanes; SiLU stays
// 8-lane (AVX2).
struct Vec16 {
  using F = __m512;
  static constexpr int kLanes = 16;
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F set1(float f) { return _mm512_set1_ps(f); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  // maxps returns its second operand when either is NaN.
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static float hmax(F v) { return _mm512_reduce_max_ps(v); }
  // GCC's reduction adds the halves (l + l+8), then l + l+4, l + l+2, l + l+1.
  static float sum16(const F* e) { return _mm512_reduce_add_ps(e[0]); }
  // reduce16's lane 4q + m sums v[4m + q]: chunk 4q + m goes there.
  static void chunk_sums(const float* x, float* sums) {
    F v[16];
    for (int i = 0; i < 16; ++i)
      v[i] = load(x + 16 * (4 * (i % 4) + i / 4));
    store(sums, reduce16(v));
  }
  static F round_f16(F v) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static F expf(F x);
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F fmsub(F a, F b, F c) { return _mm512_fmsub_ps(a, b, c); }
  static F fnmadd(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }
  // p now depends on v (no instructions: KeyLaneDots' evaluation order).
  template <class P> static void order(F& v, P*& p) { __asm__("" : "+v"(v), "+r"(p)); }
};

// ggml_expf (kernels_scalar.cpp) on 16 lanes as ggml_v_expf's AVX-512 form computes it: its
// steps (exp_steps), the scaling by 2^n one vscalefps.
__m512 Vec16::expf(__m512 x) {
  __m512 n;
  const __m512 j = exp_steps<Vec16>(x, n);
  const __m512 res = _mm512_scalef_ps(j, n);
  const __mmask16 big = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192.0f), _CMP_GT_OQ);
  const __mmask16 neg = _mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ);
  const __m512 sat = _mm512_mask_blend_ps(neg, _mm512_set1_ps(INFINITY), _mm512_setzero_ps());
  const __m512 out = _mm512_mask_blend_ps(big, res, sat);
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, n, _CMP_UNORD_Q), out, n);
}

// ggml-order lane accumulators (kernel_common.hpp) of row a (elements summed in chunks of 64)
// against NX vectors, continued over elements [k0, k1): sums[i][j] += products of chunk lane j
// with vector i. Each chunk of the row is converted once for all NX vectors; while it sums the
// chunk at k it prefetches what ahead(k) points to (two lines; null: nothing).
template <int NX, class Ahead, class X>
inline void f16_lanes(const uint16_t* a, Ahead ahead, const X* x, int64_t ldx, int64_t k0,
                      int64_t k1, __m512 (*sums)[4]) {
  __m512 acc[NX][4]; // in registers over the span (the compiler keeps sums[] in memory)
  for (int i = 0; i < NX; ++i)
    for (int j = 0; j < 4; ++j)
      acc[i][j] = sums[i][j];
  for (int64_t k = k0; k < k1; k += kF16Chunk) {
    if (const uint16_t* p = ahead(k)) {
      _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + 32), _MM_HINT_T0);
    }
    __m512 av[4];
    for (int j = 0; j < 4; ++j)
      av[j] = load_ph16(a + k + 16 * j);
    for (int i = 0; i < NX; ++i)
      for (int j = 0; j < 4; ++j)
        acc[i][j] = _mm512_fmadd_ps(av[j], load16(x + i * ldx + k + 16 * j), acc[i][j]);
  }
  for (int i = 0; i < NX; ++i)
    for (int j = 0; j < 4; ++j)
      sums[i][j] = acc[i][j];
}

// v[i] = (acc0 + acc2) + (acc1 + acc3) of vector i: ggml's join of the four accumulators.
template <int NX> inline void join_lanes(const __m512 (*acc)[4], __m512* v) {
  for (int i = 0; i < NX; ++i)
    v[i] = _mm512_add_ps(_mm512_add_ps(acc[i][0], acc[i][2]), _mm512_add_ps(acc[i][1], acc[i][3]));
}

// The 4 × 4 transposes of four vectors' lane groups: afterwards lane m of group L (elements
// 4L..4L+3) of v[j] holds what was element 4L + j of v[m].
inline void transpose_lane_groups(__m512* v) {
  const __m512 t0 = _mm512_unpacklo_ps(v[0], v[1]), t1 = _mm512_unpackhi_ps(v[0], v[1]);
  const __m512 t2 = _mm512_unpacklo_ps(v[2], v[3]), t3 = _mm512_unpackhi_ps(v[2], v[3]);
  v[0] = _mm512_shuffle_ps(t0, t2, 0x44);
  v[1] = _mm512_shuffle_ps(t0, t2, 0xEE);
  v[2] = _mm512_shuffle_ps(t1, t3, 0x44);
  v[3] = _mm512_shuffle_ps(t1, t3, 0xEE);
}

// Adds the leftover products k in [np, n) of a block's 16 dots (lane 4q + m: row m, vector q)
// to their reduced heads in double, one dot per lane, each product rounded to float first.
// Sixteen k at a time, the rows' halves are converted together and the rows and vectors
// transposed to one lane group per k (V·p just past depth 2048 has 32 leftover elements per
// row; one at a time took ~30 instructions each, and V·p over 1056 elements from L2 0.91x the
// time of 1024; now 0.96x).
template <class X>
inline __m512 add_tails16(__m512 head, const uint16_t* a, int64_t lda, const X* x, int64_t ldx,
                          int64_t np, int64_t n) {
  __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(head));
  __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(head), 1)));
  const auto add = [&](__m512 p) {
    lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
    hi = _mm512_add_pd(
        hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p), 1))));
  };
  int64_t k = np;
  if (k + 16 <= n) {
    // For lane group L of a transposed vector: lane 4q + m takes element 4L + m (rows: the
    // same four in every group) or 4L + q (vectors: one per group).
    const __m512i rows = _mm512_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
    const __m512i xs = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    __m512i rows_at[4], xs_at[4];
    for (int g = 0; g < 4; ++g) {
      rows_at[g] = _mm512_add_epi32(rows, _mm512_set1_epi32(4 * g));
      xs_at[g] = _mm512_add_epi32(xs, _mm512_set1_epi32(4 * g));
    }
    for (; k + 16 <= n; k += 16) {
      __m512 r[4], xv[4];
      for (int m = 0; m < 4; ++m) {
        r[m] = load_ph16(a + m * lda + k);
        xv[m] = load16(x + m * ldx + k);
      }
      transpose_lane_groups(r);
      transpose_lane_groups(xv);
      for (int g = 0; g < 4; ++g) // element k + 4g + j
        for (int j = 0; j < 4; ++j)
          add(_mm512_mul_ps(_mm512_permutexvar_ps(rows_at[g], r[j]),
                            _mm512_permutexvar_ps(xs_at[g], xv[j])));
    }
  }
  const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  for (; k < n; ++k) {
    const __m128 ak = _mm_setr_ps(_cvtsh_ss(a[k]), _cvtsh_ss(a[lda + k]), _cvtsh_ss(a[2 * lda + k]),
                                  _cvtsh_ss(a[3 * lda + k]));
    const __m128 xk = _mm_setr_ps(to_f32(x[k]), to_f32(x[ldx + k]), to_f32(x[2 * ldx + k]),
                                  to_f32(x[3 * ldx + k]));
    add(_mm512_mul_ps(_mm512_broadcast_f32x4(ak),
                      _mm512_permutexvar_ps(spread, _mm512_zextps128_ps512(xk))));
  }
  return _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo))),
                         _mm256_castps_pd(_mm512_cvtpd_ps(hi)), 1));
}

// One dot of f16_dots (the rows and vectors left over from the 4 × 4 blocks).
template <class X> float f16_x_dot(const uint16_t* a, const X* x, int64_t n) {
  const int64_t np = n / kF16Chunk * kF16Chunk;
  __m512 acc[1][4];
  for (__m512& c : acc[0])
    c = _mm512_setzero_ps();
  f16_lanes<1>(
      a, [&](int64_t k) { return dots_prefetch_at(a, nullptr, np, k); }, x, 0, 0, np, acc);
  __m512 v;
  join_lanes<1>(acc, &v);
  return f16_dot_tail(_mm512_reduce_add_ps(v), a, x, np, n,
                      [](uint16_t h) { return _cvtsh_ss(h); });
}

// Positions of a block's rows summed whole before the next row: the four vectors' floats of
// them (48 KB at 3072) then stay in L1 while each row takes them. Longer rows (V·p past depth
// 3072) go in as few equal spans as keep to this, the rows taking each span in turn. bench_kernels
// attention n=1, 2 threads, 4 alternations against whole rows: n_kv=4096 (spans of 2048) 0.905x
// (t1 0.865x); n_kv=3072 whole against 2048 + 1024 0.984x, against 2 × 1536 1.063x. tg32 at
// depth 3968, 2 threads: 1.05-1.08x (two runs of 3 pairs).
constexpr int64_t kWholeSpan = 3072;

// The joined lane sums of a block's four rows (row m, vector q to v[4m + q]), each row whole
// (or each span of kWholeSpan, rows in turn) with its 16 accumulators in registers; row m
// prefetches ahead(m, k) while it sums the chunk at k.
template <class Ahead, class X>
inline void whole_rows(const uint16_t* ar, int64_t lda, const X* xi, int64_t ldx, int64_t np,
                       Ahead ahead, __m512* v) {
  const int64_t chunks = np / kF16Chunk,
                spans = np > kWholeSpan ? (np + kWholeSpan - 1) / kWholeSpan : 1;
  const int64_t span = (chunks + spans - 1) / spans * kF16Chunk;
  __m512 acc[4][4][4] = {}; // [row][vector][accumulator]
  for_block_spans<4>(np, span, [&](int m, int64_t k0, int64_t k1) {
    f16_lanes<4>(
        ar + m * lda, [&](int64_t k) { return ahead(m, k); }, xi, ldx, k0, k1, acc[m]);
  });
  for (int m = 0; m < 4; ++m)
    join_lanes<4>(acc[m], v + 4 * m);
}

// reduce4 of one key's dots with its head's four query vectors (128 elements, two chunks):
// the key's eight widened vectors feed the vectors' two-chunk sums directly (the first
// product of each lane an FMA onto zero, as ggml's accumulators start at zero).
inline __m512 key_head_dots(const uint16_t* key, const float* x, int64_t ldx) {
  const __m512 zero = _mm512_setzero_ps();
  __m512 k[8], v[4];
  for (int j = 0; j < 8; ++j)
    k[j] = load_ph16(key + 16 * j);
  for (int q = 0; q < 4; ++q) {
    const float* xq = x + q * ldx;
    __m512 c[4];
    for (int j = 0; j < 4; ++j)
      c[j] = _mm512_fmadd_ps(k[j + 4], _mm512_loadu_ps(xq + kF16Chunk + 16 * j),
                             _mm512_fmadd_ps(k[j], _mm512_loadu_ps(xq + 16 * j), zero));
    v[q] = _mm512_add_ps(_mm512_add_ps(c[0], c[2]), _mm512_add_ps(c[1], c[3]));
  }
  return reduce4(v);
}

// Stores a block's 16 dots (lane 4q + m: row m, vector q) to out[q·ld_out + m].
inline void store_block16(__m512 s, float* out, int64_t ld_out) {
  _mm_storeu_ps(out, _mm512_extractf32x4_ps(s, 0));
  _mm_storeu_ps(out + ld_out, _mm512_extractf32x4_ps(s, 1));
  _mm_storeu_ps(out + 2 * ld_out, _mm512_extractf32x4_ps(s, 2));
  _mm_storeu_ps(out + 3 * ld_out, _mm512_extractf32x4_ps(s, 3));
}

// Reduces a block's 16 joined dots (v[4m + q]: row m of ar, vector q of xi), adds the leftover
// products past np, and stores them to out[q·ld_out + m].
template <class X>
inline void store_dots16(const __m512* v, const uint16_t* ar, int64_t lda, const X* xi, int64_t ldx,
                         int64_t np, int64_t n, float* out, int64_t ld_out) {
  const __m512 s = reduce16(v);
  store_block16(np < n ? add_tails16(s, ar, lda, xi, ldx, np, n) : s, out, ld_out);
}

// Each row chunk is converted once for four vectors and the 16 dots are reduced together, each
// row summed whole in turn (whole_rows: in spans past kWholeSpan). A row longer than a span (V·p)
// prefetches the row two below at the chunk's offset, so the rows stream in address order about 8
// KB ahead. V·p per layer at depth 2048, 2 threads, timed inside the decode: 16 rows taking each
// span in turn, median 90.5 µs; whole rows prefetching one row below, 82 (lower in 9 of 12
// alternations); two rows below, 69 against 78 for one (lower in 8 of 8); three rows below, 74
// against 73 for two (8 pairs). Shorter rows prefetch as dots_prefetch_at says. X: the vectors'
// elements, f32 (f16_dots) or F16 (f16_f16_dots).
template <class X>
void f16_x_dots(const uint16_t* a, int64_t lda, int64_t n_rows, const X* x, int64_t ldx,
                int64_t n_x, int64_t n, float* out, int64_t ld_out) {
  const int64_t np = n / kF16Chunk * kF16Chunk;
  dots_blocked(
      [&](int64_t r, int64_t i, float* o) {
        const uint16_t* ar = a + r * lda;
        const X* xi = x + i * ldx;
        __m512 v[16];
        if (np > kDotsSpan)
          whole_rows(
              ar, lda, xi, ldx, np, [&](int m, int64_t k) { return ar + (m + 2) * lda + k; }, v);
        else
          whole_rows(
              ar, lda, xi, ldx, np,
              [&](int m, int64_t k) {
                return dots_prefetch_at(ar + m * lda, ar + (m + 4) * lda, np, k);
              },
              v);
        store_dots16(v, ar, lda, xi, ldx, np, n, o, ld_out);
      },
      [&](int64_t r, int64_t i) { return f16_x_dot(a + r * lda, x + i * ldx, n); }, n_rows, n_x,
      out, ld_out);
}

// f16_f32_dots takes 4 rows at a time, kWideSpan positions of them widened at once into an L1
// buffer that up to kWideVectors vectors then read: 4 KB of rows and 16 KB of vectors.
constexpr int64_t kWideSpan = 256;
constexpr int64_t kWideVectors = 16;

// The dots of 4 rows (ar + m·lda) with nv vectors (xi + q·ldx; nv % 4 == 0, nv <= kWideVectors)
// in tinyBLAS's order: one 16-lane accumulator per dot over the n positions in turn, kept in
// memory between spans; blocks of 4 rows × 4 vectors per pass over a span, each row vector
// loaded once from the buffer for the block's four vectors. Dot (row m, vector q) goes to
// o[q·ld_out + m].
void wide_block(const uint16_t* ar, int64_t lda, const float* xi, int64_t ldx, int64_t nv,
                int64_t n, float* o, int64_t ld_out) {
  alignas(64) float rows[4][kWideSpan];
  __m512 acc[kWideVectors / 4][16]; // [vector block][4m + q]
  for (int64_t b = 0; b < nv / 4; ++b)
    for (__m512& c : acc[b])
      c = _mm512_setzero_ps();
  for (int64_t k0 = 0; k0 < n; k0 += kWideSpan) {
    const int64_t len = n - k0 < kWideSpan ? n - k0 : kWideSpan;
    for (int m = 0; m < 4; ++m)
      for (int64_t k = 0; k < len; k += 16) {
        if (k % 32 == 0) // one line ahead in the next block's rows
          _mm_prefetch(reinterpret_cast<const char*>(ar + (m + 4) * lda + k0 + k), _MM_HINT_T0);
        _mm512_store_ps(rows[m] + k, load_ph16(ar + m * lda + k0 + k));
      }
    for (int64_t b = 0; b < nv / 4; ++b) {
      __m512 c[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i)
        c[i] = acc[b][i];
      const float* xb = xi + 4 * b * ldx + k0;
      for (int64_t k = 0; k < len; k += 16) {
        __m512 av[4];
#pragma GCC unroll 4
        for (int m = 0; m < 4; ++m)
          av[m] = _mm512_load_ps(rows[m] + k);
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          // In a register, or GCC folds the load into each of the four FMAs.
          __m512 xv = _mm512_loadu_ps(xb + q * ldx + k);
          __asm__("" : "+v"(xv));
#pragma GCC unroll 4
          for (int m = 0; m < 4; ++m)
            c[4 * m + q] = _mm512_fmadd_ps(av[m], xv, c[4 * m + q]);
        }
      }
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i)
        acc[b][i] = c[i];
    }
  }
  for (int64_t b = 0; b < nv / 4; ++b)
    store_block16(reduce16(acc[b]), o + 4 * b * ld_out, ld_out);
}

// tinyBLAS order (one 16-lane accumulator per dot, f16_f32_dot). Each row vector is widened
// once for up to kWideVectors vectors instead of once per 4: a widening costs about two FMA
// slots, so blocks that widened their own rows were bound at 1.5 times the FMA rate (the
// harness in docs/performance.md, "The batch ·V widened once per work item").
void f16_f32_dots(const uint16_t* a, int64_t lda, int64_t n_rows, const float* x, int64_t ldx,
                  int64_t n_x, int64_t n, float* out, int64_t ld_out) {
  const int64_t rows4 = n_rows / 4 * 4, xs4 = n_x / 4 * 4;
  for (int64_t i = 0; i < xs4; i += kWideVectors) {
    const int64_t nv = xs4 - i < kWideVectors ? xs4 - i : kWideVectors;
    for (int64_t r = 0; r < rows4; r += 4)
      wide_block(a + r * lda, lda, x + i * ldx, ldx, nv, n, out + i * ld_out + r, ld_out);
  }
  dots_left_over([&](int64_t r, int64_t i) { return f16_f32_dot(a + r * lda, x + i * ldx, n); }, 0,
                 rows4, xs4, n_rows, n_x, out, ld_out);
}

// The screen on 16 lanes: a whole group per pass, vpdpbusd with the operand's 4-byte word
// broadcast from memory ({1to16}). Four streams of 4 tokens (16 accumulators, 4 sums and a
// weight vector: 21 of the 32 zmm) against two: bench_kernels q8_0_screen n=4, 3
// alternations, 1.12-1.25x at 1 thread and 1.03-1.21x at 2; bench_batch -n 4 1.048 (8 pairs).
struct ScreenLanes16 {
  using I = __m512i;
  using F = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kTokens = 4;
  static constexpr int kBatchStreams = 4;
  static constexpr bool kOffset = true;
  static I quads(const uint8_t* p) { return _mm512_loadu_si512(p); }
  static I dot(I acc, I w, const int8_t* x4) {
    __asm__("vpdpbusd %[x]%{1to16%}, %[w], %[acc]"
            : [acc] "+v"(acc)
            : [w] "v"(w), [x] "m"(*reinterpret_cast<const int32_t*>(x4)));
    return acc;
  }
  static F scales(const uint8_t* p) { return _mm512_cvtph_ps(load256(p)); }
  static I izero() { return _mm512_setzero_si512(); }
  static I iset1(int32_t v) { return _mm512_set1_epi32(v); }
  static F fzero() { return _mm512_setzero_ps(); }
  static F fset1(float v) { return _mm512_set1_ps(v); }
  static F cvt(I v) { return _mm512_cvtepi32_ps(v); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
};

// head_dots_by_keys' blocks: 2B-4T's heads (128 elements) through key_head_dots.
struct KeyBlock {
  __m512 w[4]; // key m's reduce4
  void add(int m, const uint16_t* key, const uint16_t* below, const float* x, int64_t ldx) {
    for (int l = 0; l < 4; ++l)
      _mm_prefetch(reinterpret_cast<const char*>(below + 32 * l), _MM_HINT_T0);
    w[m] = key_head_dots(key, x, ldx);
  }
  void store(float* o, int64_t ld_out) const { store_block16(finish16(w), o, ld_out); }
};

void head_dots(const uint16_t* k, int64_t ldk, int64_t n_keys, int64_t n_head_kv, int64_t group,
               const float* x, int64_t n, float* out, int64_t ld_out) {
  head_dots_by_keys<KeyBlock, f16_x_dots<float>>(n == 2 * kF16Chunk, k, ldk, n_keys, n_head_kv,
                                                 group, x, n, out, ld_out);
}

Table make_table() {
  Table t = table_avx2();
  t.isa = Isa::avx512;
  t.quantize_act = quantize_act;
  t.i2s_gemv = i2s_gemv;
  t.i2s_gemm = i2s_gemm;
  set_f16_entries<f16_dot, f16_f32_dot>(t);
  t.q8_0_gemm = q8_0_gemm;
  t.q8_0_screen = q8_0_screen_avx<ScreenLanes16>;
  t.softmax = vec_softmax<Vec16>;
  t.rope = vec_rope<Vec16>;
  t.f16_dots = f16_x_dots<float>;
  t.f16_f16_dots = f16_x_dots<uint16_t>;
  t.f16_f32_dots = f16_f32_dots;
  t.head_dots = head_dots;
  t.key_tile_dots = vec_key_tile_dots<Vec16, 4>; // 7 accumulators of 4 vectors in registers
  return t;
}

} // namespace

const Table& table_avx512() {
  static const Table t = make_table();
  return t;
}

} // namespace bitnet::kernels
