// AVX-VNNI kernels (compiled with BITNET_FLAGS_AVXVNNI; used only on CPUs that have it): the
// VEX-encoded 256-bit vpdpbusd of Intel Alder Lake and later client CPUs, which have no
// AVX-512. vpdpbusd multiplies unsigned codes 0..3 by signed int8 activations and sums four
// products into each int32 lane without saturation, so the sums equal the scalar reference
// exactly. The I2_S gemv and gemm use it (no int16 lanes to widen, one instruction per 32
// multiply-accumulates instead of two); the other entries come from the AVX2 table.
#include <immintrin.h>

#include "kernels/avx2_common.hpp"
#include "kernels/kernel_common.hpp"
#include "kernels/variants.hpp"

namespace bitnet::kernels {
namespace {

// acc += u·s, four products per int32 lane. Through asm, as kernels_avx512.cpp's dpbusd:
// around _mm256_dpbusd_avx_epi32 GCC 12 copies each accumulator to another register and
// back and stores it to the stack (objdump: 2.5 moves per vpdpbusd in the gemm's 6-token
// loop). "xm": s may be read by the instruction itself. The test build with AVX-512 VL+VNNI
// flags (tests/kernels/CMakeLists.txt) takes the EVEX form.
inline void dpbusd(__m256i& acc, __m256i u, __m256i s) {
#if defined(__AVXVNNI__)
  __asm__("%{vex%} vpdpbusd %[s], %[u], %[acc]" : [acc] "+x"(acc) : [u] "x"(u), [s] "xm"(s));
#else
  __asm__("%{evex%} vpdpbusd %[s], %[u], %[acc]" : [acc] "+x"(acc) : [u] "x"(u), [s] "xm"(s));
#endif
}

// Σ code·q of NR I2_S rows (row r at w[r], k inputs) for NT tokens at once (token t's
// activations at q + t·k; row r, token t to sums[r·NT + t]): the decode gemv and a batched
// decode step. Per block and row: one load, 3 shifts and 4 masks give the codes of the four
// 32-byte activation loads, each multiplied by vpdpbusd straight into int32 lanes (the AVX2
// gemv: 4 vpmaddubsw, 4 int16 adds and a widening every 8 blocks). With few accumulators
// each row × token takes two, so that vpdpbusd's latency chains overlap (integer sums: the
// order is irrelevant); live are the accumulators, the packed bytes, one code vector and
// the mask (at most 15 ymm).
template <int NR, int NT>
__attribute__((noinline)) void i2s_row_dots(const uint8_t* const* w, int64_t k, const int8_t* q,
                                            int32_t* sums) {
  constexpr int kSets = NR * NT <= 6 ? 2 : 1;
  // Every loop over the accumulators unrolled, so that they stay in registers.
  __m256i acc[NR][NT][kSets];
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
    for (int t = 0; t < NT; ++t)
#pragma GCC unroll 2
      for (int s = 0; s < kSets; ++s)
        acc[r][t][s] = _mm256_setzero_si256();
  const int64_t nb = k / kI2sBlock;
  for (int64_t b = 0; b < nb; ++b)
    i2s_block_rows_tokens<NR, NT>(w, b, q, k, [&](int r, int t, int j, __m256i codes, __m256i act) {
      dpbusd(acc[r][t][j % kSets], codes, act);
    });
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
    for (int t = 0; t < NT; ++t) {
      __m256i a = acc[r][t][0];
      if constexpr (kSets == 2) a = _mm256_add_epi32(a, acc[r][t][1]);
      sums[r * NT + t] = hsum_i32(a);
    }
}

void i2s_gemv(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1, const int8_t* q,
              float act_scale, int32_t act_sum, float* out) {
  i2s_gemv_streams([&](auto nr, const uint8_t* const* rows,
                       int32_t* sums) { i2s_row_dots<decltype(nr)::value, 1>(rows, k, q, sums); },
                   w, w_scale, k, r0, r1, act_scale, act_sum, out);
}

// The gemm's multiply step (avx2_common.hpp, I2sTile256): 6 tokens, 12 accumulators + 2
// panel vectors + the broadcast = 15 ymm registers. An int32 lane gains at most 4·3·128
// per step, so chunks of any practical size are exact.
struct Vnni {
  static constexpr int kTokens = 6;
  static constexpr int64_t kChunk = 512;
  static constexpr int64_t kChunk3 = kChunk;
  static __m256i step(__m256i acc, __m256i codes, __m256i act) {
    dpbusd(acc, codes, act);
    return acc;
  }
  static __m256i widen(__m256i acc) { return acc; }
};

// A few tokens (a server's batched decode step) as rows of dots, two rows per call on the
// gemv's streams, as the AVX-512 gemm takes them; more through the panels.
void i2s_gemm(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1, const int8_t* q,
              const float* act_scale, const int32_t* act_sum, int64_t n_tok, float* out,
              int64_t ld_out) {
  i2s_gemm_rows_or_panels<I2sTile256<Vnni>, 2>(
      [&](auto nr_c, auto nt_c, const uint8_t* const* rows, int32_t* sums) {
        i2s_row_dots<decltype(nr_c)::value, decltype(nt_c)::value>(rows, k, q, sums);
      },
      w, w_scale, k, r0, r1, q, act_scale, act_sum, n_tok, out, ld_out);
}

// The screen's dot: vpdpbusd of the stored bytes (unsigned) and the broadcast operand.
struct ScreenLanesVnni : ScreenLanes8 {
  static constexpr int kTokens = 4;
  static constexpr int kBatchStreams = 1;
  static constexpr bool kOffset = true;
  static __m256i dot(__m256i acc, __m256i w, const int8_t* x4) {
    dpbusd(acc, w, bcast(x4));
    return acc;
  }
};

Table make_table() {
  Table t = table_avx2();
  t.isa = Isa::avxvnni;
  t.i2s_gemv = i2s_gemv;
  t.i2s_gemm = i2s_gemm;
  t.q8_0_screen = q8_0_screen_avx<ScreenLanesVnni>;
  return t;
}

} // namespace

const Table& table_avxvnni() {
  static const Table t = make_table();
  return t;
}

} // namespace bitnet::kernels
