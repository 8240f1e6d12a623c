// AVX-VNNI kernels (compiled with BITNET_FLAGS_AVXVNNI; used only on CPUs that have it): the
// VEX-encoded 256-bit vpdpbusd of Intel Alder Lake and later client CPUs, which have no
// AVX-512. vpdpbusd multiplies unsigned codes 0..3 by signed int8 activations and sums four
// products into each int32 lane without saturation, so the sums equal the scalar reference
// exactly. Only the I2_S gemm uses it (no int16 lanes to widen, one instruction per 32
// multiply-accumulates instead of two); the other entries come from the AVX2 table.
#include <immintrin.h>

#include "kernels/avx2_common.hpp"
#include "kernels/kernel_common.hpp"
#include "kernels/variants.hpp"

namespace bitnet::kernels {
namespace {

// The gemm's multiply step (avx2_common.hpp, I2sTile256): 6 tokens, 12 accumulators + 2
// panel vectors + the broadcast = 15 ymm registers. An int32 lane gains at most 4·3·128
// per step, so chunks of any practical size are exact. Through asm, as kernels_avx512.cpp's
// dpbusd: around _mm256_dpbusd_avx_epi32 GCC 12 copies each accumulator to another register
// and back and stores it to the stack (objdump: 2.5 moves per vpdpbusd in the 6-token loop).
// The test build with AVX-512 VL+VNNI flags (tests/kernels/CMakeLists.txt) takes the EVEX form.
struct Vnni {
  static constexpr int kTokens = 6;
  static constexpr int64_t kChunk = 512;
  static constexpr int64_t kChunk3 = kChunk;
  static __m256i step(__m256i acc, __m256i codes, __m256i act) {
#if defined(__AVXVNNI__)
    __asm__("%{vex%} vpdpbusd %[act], %[codes], %[acc]"
#else
    __asm__("%{evex%} vpdpbusd %[act], %[codes], %[acc]"
#endif
            : [acc] "+x"(acc)
            : [codes] "x"(codes), [act] "x"(act));
    return acc;
  }
  static __m256i widen(__m256i acc) {
    return acc;
  }
};

void i2s_gemm(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1, const int8_t* q,
              const float* act_scale, const int32_t* act_sum, int64_t n_tok, float* out,
              int64_t ld_out) {
  i2s_gemm_panels<I2sTile256<Vnni>>(w, w_scale, k, r0, r1, q, act_scale, act_sum, n_tok, out,
                                    ld_out);
}

Table make_table() {
  Table t = table_avx2();
  t.isa = Isa::avxvnni;
  t.i2s_gemm = i2s_gemm;
  return t;
}

} // namespace

const Table& table_avxvnni() {
  static const Table t = make_table();
  return t;
}

} // namespace bitnet::kernels
