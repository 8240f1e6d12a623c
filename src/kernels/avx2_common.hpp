// Internal: intrinsic helpers shared by the AVX2, AVX-VNNI and AVX-512 translation units only
// (all are compiled with at least AVX2+FMA+F16C). Internal linkage for the reason given in
// kernel_common.hpp.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/kernel_common.hpp"

namespace bitnet::kernels {
namespace {

// Decode streams each I2_S weight byte from memory once; the unpack leaves the core too
// few loads in flight for the hardware prefetcher alone to keep up, so gemv prefetches
// this far ahead.
inline constexpr int64_t kI2sPrefetchBytes = 2048;
// The same for Q8_0 rows (the head screen streams 349 MB per token on 2B-4T).
inline constexpr int64_t kQ8PrefetchBytes = 2048;
// q8_0_screen's quants: 2 KiB ahead ran 1.04-1.07x (one sequence) and 1.06-1.15x (four) the
// bytes per second of 1 KiB (bench_kernels, 2 threads, 3 alternated rounds); 4 KiB was no
// better for one.
inline constexpr int64_t kScreenPrefetchBytes = 2048;
// The F16 head (f16_dot, 656 MB per full head on 2B-4T), in halves: each row's next 4 KiB.
// Without it the AVX-512 f16_dot streamed the head at about 60% of the AVX2 one's rate.
inline constexpr int64_t kF16PrefetchHalves = 2048;

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

// Block b of NR I2_S rows (row r's packed blocks at w[r]) against NT tokens' activations
// (token t's at q + t·k): each row's four 2-bit fields j unpacked once, and
// mac(r, t, j, codes, act) called with each of them and the token's 32 matching activation
// bytes (the rows of dots of the AVX2 and AVX-VNNI gemms).
template <int NR, int NT, class Mac>
__attribute__((always_inline)) inline void
i2s_block_rows_tokens(const uint8_t* const* w, int64_t b, const int8_t* q, int64_t k, Mac mac) {
  const __m256i mask = _mm256_set1_epi8(3);
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r) {
    const uint8_t* wb = w[r] + b * 32;
    _mm_prefetch(reinterpret_cast<const char*>(wb + kI2sPrefetchBytes), _MM_HINT_T0);
    const __m256i packed = load256(wb);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m256i codes = _mm256_and_si256(_mm256_srli_epi16(packed, 6 - 2 * j), mask);
#pragma GCC unroll 16
      for (int t = 0; t < NT; ++t)
        mac(r, t, j, codes, load256(q + t * k + b * kI2sBlock + 32 * j));
    }
  }
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

// One row w against NT operands (token t's blocks at x + t·row_bytes; its dot to out[t·ld_out]):
// each row block is loaded and its |w| made once for all of them (compute bounds a batched head
// screen, not memory). Each lane accumulates as q8_0_rows_dot's does, so every output is bit
// for bit that of its token alone.
template <int NT, class Dot4>
void q8_0_tokens_dot(Dot4 dot4, const uint8_t* w, const uint8_t* x, int64_t row_bytes, int64_t nb,
                     float* out, int64_t ld_out) {
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t)
    acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* wb = w + b * kQ8BlockBytes;
    _mm_prefetch(reinterpret_cast<const char*>(wb + kQ8PrefetchBytes), _MM_HINT_T0);
    const float dw = q8_block_scale(wb);
    const __m256i qw = load256(wb + 2);
    const __m256i uw = _mm256_sign_epi8(qw, qw);
    for (int t = 0; t < NT; ++t) {
      const uint8_t* xb = x + t * row_bytes + b * kQ8BlockBytes;
      const __m256 d = _mm256_set1_ps(dw * q8_block_scale(xb));
      const __m256i sums = dot4(uw, _mm256_sign_epi8(load256(xb + 2), qw));
      acc[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t)
    out[t * ld_out] = hsum_ps(acc[t]);
}

// One token: q8_0_gemm_rows' two row streams; several: up to kTokens at a time per row.
template <class Dot4>
void q8_0_gemm_avx(Dot4 dot4, const uint8_t* w, int64_t k, int64_t r0, int64_t r1,
                   const uint8_t* xq, int64_t n_tok, float* out, int64_t ld_out) {
  if (n_tok == 1) {
    q8_0_gemm_rows(
        [&](auto nr, auto... args) { q8_0_rows_dot<decltype(nr)::value>(dot4, args...); }, w, k, r0,
        r1, xq, n_tok, out, ld_out);
    return;
  }
  constexpr int kTokens = 4;
  const int64_t nb = k / kQ8Block, row_bytes = nb * kQ8BlockBytes;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t t0 = 0; t0 < n_tok; t0 += kTokens)
      with_token_count<kTokens>(
          static_cast<int>(std::min<int64_t>(kTokens, n_tok - t0)), [&](auto nt) {
            q8_0_tokens_dot<decltype(nt)::value>(dot4, w + r * row_bytes, xq + t0 * row_bytes,
                                                 row_bytes, nb, out + t0 * ld_out + r, ld_out);
          });
}

// Table::q8_0_screen for NT tokens on NG groups read as streams (one core keeps more reads in
// flight on several streams than on one: see for_row_streams), each block's 16 rows as
// 16 / kLanes vectors (so a pass streams every byte of its groups once). The variants differ
// only in L, the lane vectors:
//   I, F, kLanes             int32 and float vectors of kLanes lanes;
//   kTokens, kBatchStreams   tokens per pass, and groups per pass with more than one token
//                            (one token: kGemvStreams);
//   kOffset                  whether dot's sums include the +128 of the stored bytes (they
//                            then start from x_bias);
//   quads(p)                 kLanes rows' 4-byte groups at p;
//   dot(acc, w, x4)          acc plus, per lane, the Σ of its 4 bytes of w (q + 128) times
//                            the 4 int8 at x4;
//   scales(p)                kLanes f16 scales at p as floats;
//   izero, iset1, fzero, fset1, cvt, mul, fmadd, store  as their intrinsics.
// Each lane keeps q8_0_screen's order: one block's integer sum, then one fma.
template <class L, int NG, int NT>
void q8_0_screen_pass(const uint8_t* const* groups, int64_t nb, const int8_t* xq, int64_t k,
                      const float* xd, const int32_t* x_bias, float* const* out, int64_t ld_out) {
  constexpr int H = kScreenRows / L::kLanes;
  typename L::F acc[NG][H][NT];
#pragma GCC unroll 4
  for (int g = 0; g < NG; ++g)
#pragma GCC unroll 2
    for (int h = 0; h < H; ++h)
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t)
        acc[g][h][t] = L::fzero();
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* xb = xq + b * kQ8Block;
#pragma GCC unroll 4
    for (int g = 0; g < NG; ++g) {
      const uint8_t* qb = groups[g] + b * kScreenBlockBytes;
#pragma GCC unroll 9
      for (int64_t i = 0; i < kScreenBlockBytes; i += 64)
        _mm_prefetch(reinterpret_cast<const char*>(qb + kScreenPrefetchBytes + i), _MM_HINT_NTA);
#pragma GCC unroll 2
      for (int h = 0; h < H; ++h) {
        typename L::I s[NT];
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t)
          s[t] = L::kOffset ? L::iset1(x_bias[t * nb + b]) : L::izero();
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
          const typename L::I w = L::quads(qb + 64 * j + 4 * L::kLanes * h);
#pragma GCC unroll 4
          for (int t = 0; t < NT; ++t)
            s[t] = L::dot(s[t], w, xb + t * k + 4 * j);
        }
        const typename L::F d = L::scales(qb + kScreenQuantBytes + 2 * L::kLanes * h);
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t)
          acc[g][h][t] = L::fmadd(L::cvt(s[t]), L::mul(d, L::fset1(xd[t * nb + b])), acc[g][h][t]);
      }
    }
  }
#pragma GCC unroll 4
  for (int g = 0; g < NG; ++g)
#pragma GCC unroll 2
    for (int h = 0; h < H; ++h)
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t)
        L::store(out[g] + t * ld_out + L::kLanes * h, acc[g][h][t]);
}

// Groups as streams of q8_0_screen_pass, up to L::kTokens tokens per pass.
template <class L>
void q8_0_screen_avx(const uint8_t* w, int64_t k, int64_t n_groups, const int8_t* xq,
                     const float* xd, const int32_t* x_bias, int64_t n_x, float* out,
                     int64_t ld_out) {
  const int64_t nb = k / kQ8Block, group_bytes = screen_group_bytes(k);
  const auto pass = [&](auto ng, int64_t g, int64_t stride) {
    constexpr int NG = decltype(ng)::value;
    for (int64_t t0 = 0; t0 < n_x; t0 += L::kTokens)
      with_token_count<L::kTokens>(
          static_cast<int>(std::min<int64_t>(L::kTokens, n_x - t0)), [&](auto nt) {
            const uint8_t* groups[NG];
            float* o[NG];
            for (int j = 0; j < NG; ++j) {
              groups[j] = w + (g + j * stride) * group_bytes;
              o[j] = out + t0 * ld_out + kScreenRows * (g + j * stride);
            }
            q8_0_screen_pass<L, NG, decltype(nt)::value>(groups, nb, xq + t0 * k, k, xd + t0 * nb,
                                                         x_bias + t0 * nb, o, ld_out);
          });
  };
  const auto streams = [&](auto ns) {
    for_row_streams<decltype(ns)::value>(
        0, n_groups, [&](int64_t g, int64_t stride) { pass(ns, g, stride); },
        [&](int64_t g) { pass(std::integral_constant<int, 1>{}, g, 0); });
  };
  if (n_x == 1)
    streams(std::integral_constant<int, kGemvStreams>{});
  else
    streams(std::integral_constant<int, L::kBatchStreams>{});
}

// q8_0_screen's 8-lane vectors but dot (AVX2's and AVX-VNNI's differ there).
struct ScreenLanes8 {
  using I = __m256i;
  using F = __m256;
  static constexpr int kLanes = 8;
  static I quads(const uint8_t* p) { return load256(p); }
  static I bcast(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
  }
  static F scales(const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static I izero() { return _mm256_setzero_si256(); }
  static I iset1(int32_t v) { return _mm256_set1_epi32(v); }
  static F fzero() { return _mm256_setzero_ps(); }
  static F fset1(float v) { return _mm256_set1_ps(v); }
  static F cvt(I v) { return _mm256_cvtepi32_ps(v); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
};

// The 256-bit gemm tile (kernel_common.hpp, i2s_gemm_panels) of the AVX2 and AVX-VNNI
// variants: 16 rows (two ymm of 8 rows × 4 codes) × Mac::kTokens tokens. They differ only
// in Mac, the multiply step:
//   step(acc, codes, act)   acc plus the products of codes (u8) and act (s8) summed per
//                           lane (into int16 or int32 lanes);
//   widen(acc)              the 8 int32 row sums of acc;
//   kTokens, kChunk, kChunk3
//                           the tile's tokens, the panel's inputs and those of one dot when
//                           the panel holds code 3 (kernel_common.hpp; acc must not overflow
//                           within kChunk / 4 steps of codes 0..2, nor kChunk3 / 4 of any).
template <class Mac> struct I2sTile256 {
  static constexpr int kVecs = 2;
  static constexpr int64_t kRows = 8 * kVecs;
  static constexpr int kTokens = Mac::kTokens;
  static constexpr int64_t kChunk = Mac::kChunk;
  static constexpr int64_t kChunk3 = Mac::kChunk3;

  // The 8 rows' packed bytes of block b, transposed as 8×8 dwords: vector d holds packed
  // dword d of the 8 rows in order, whose four 2-bit fields are the codes of steps d,
  // 8 + d, 16 + d and 24 + d (the I2_S byte j holds inputs j, 32 + j, 64 + j and 96 + j
  // from the top bits down).
  static constexpr int kPackRows = 8;
  static void pack_rows(const uint8_t* const* rows, int64_t b, int8_t* dst) {
    __m256i x[8];
    for (int i = 0; i < 8; ++i)
      x[i] = load256(rows[i] + b * 32);
    __m256i lo[4], hi[4];
    for (int i = 0; i < 4; ++i) {
      lo[i] = _mm256_unpacklo_epi32(x[2 * i], x[2 * i + 1]);
      hi[i] = _mm256_unpackhi_epi32(x[2 * i], x[2 * i + 1]);
    }
    // rows 0-3 (c) and 4-7 (e) of dwords j (low lane) and 4 + j (high lane)
    const __m256i c[4] = {_mm256_unpacklo_epi64(lo[0], lo[1]), _mm256_unpackhi_epi64(lo[0], lo[1]),
                          _mm256_unpacklo_epi64(hi[0], hi[1]), _mm256_unpackhi_epi64(hi[0], hi[1])};
    const __m256i e[4] = {_mm256_unpacklo_epi64(lo[2], lo[3]), _mm256_unpackhi_epi64(lo[2], lo[3]),
                          _mm256_unpacklo_epi64(hi[2], hi[3]), _mm256_unpackhi_epi64(hi[2], hi[3])};
    __m256i y[8];
    for (int j = 0; j < 4; ++j) {
      y[j] = _mm256_permute2x128_si256(c[j], e[j], 0x20);
      y[j + 4] = _mm256_permute2x128_si256(c[j], e[j], 0x31);
    }
    const __m256i mask = _mm256_set1_epi8(3);
    const auto put = [&](int step, __m256i v) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + step * kRows * 4), v);
    };
    for (int d = 0; d < 8; ++d) {
      put(d, _mm256_and_si256(_mm256_srli_epi16(y[d], 6), mask));
      put(8 + d, _mm256_and_si256(_mm256_srli_epi16(y[d], 4), mask));
      put(16 + d, _mm256_and_si256(_mm256_srli_epi16(y[d], 2), mask));
      put(24 + d, _mm256_and_si256(y[d], mask));
    }
  }

  template <int NT>
  static void dot(const int8_t* panel, int64_t kc, const int8_t* q, int64_t q_stride,
                  int32_t* sums) {
    // Every loop over acc is unrolled, so the accumulators live in registers.
    __m256i acc[NT][kVecs];
#pragma GCC unroll 16
    for (int t = 0; t < NT; ++t)
      for (int v = 0; v < kVecs; ++v)
        acc[t][v] = _mm256_setzero_si256();
    for (int64_t s = 0; s < kc / 4; ++s) {
      __m256i p[kVecs];
      for (int v = 0; v < kVecs; ++v)
        p[v] = load256(panel + s * kRows * 4 + 32 * v);
#pragma GCC unroll 16
      for (int t = 0; t < NT; ++t) {
        int32_t a;
        std::memcpy(&a, q + t * q_stride + 4 * s, sizeof a);
        const __m256i av = _mm256_set1_epi32(a);
        for (int v = 0; v < kVecs; ++v)
          acc[t][v] = Mac::step(acc[t][v], p[v], av);
      }
    }
#pragma GCC unroll 16
    for (int t = 0; t < NT; ++t)
      for (int v = 0; v < kVecs; ++v) {
        auto* dst = reinterpret_cast<__m256i*>(sums + t * kRows + 8 * v);
        _mm256_storeu_si256(dst, _mm256_add_epi32(_mm256_loadu_si256(dst), Mac::widen(acc[t][v])));
      }
  }

  // i2s_rescale on 8 lanes: the same float operations in the same order.
  static void store(const int32_t* sums, int rows, int32_t act_sum, float act_scale, float w_scale,
                    float* out) {
    const __m256 vsum = _mm256_set1_ps(static_cast<float>(act_sum));
    const __m256 vact = _mm256_set1_ps(act_scale);
    const __m256 vw = _mm256_set1_ps(w_scale);
    int j = 0;
    for (; j + 8 <= rows; j += 8) {
      const __m256 f = _mm256_cvtepi32_ps(load256(sums + j));
      _mm256_storeu_ps(out + j, _mm256_mul_ps(_mm256_div_ps(_mm256_sub_ps(f, vsum), vact), vw));
    }
    for (; j < rows; ++j)
      out[j] = i2s_rescale(sums[j], act_sum, act_scale, w_scale);
  }
};

} // namespace
} // namespace bitnet::kernels
