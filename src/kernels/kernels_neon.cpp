// Armv8.0 NEON kernels (compiled with BITNET_FLAGS_NEON). Without sdot the int8 dot widens
// with smull to int16 and pairwise-accumulates into int32.
#include "kernels/kernels_neon_impl.hpp"

namespace bitnet::kernels {
namespace {

struct DotNeon {
  // One smull product (|a·b| <= 2^14) per int16 lane before widening: exact for any int8.
  static int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
  }
  // Σ of the products of elements 4l..4l+3 in lane l.
  static int32x4_t quads(int8x16_t a, int8x16_t b) {
    return vpaddq_s32(vpaddlq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(b))),
                      vpaddlq_s16(vmull_high_s8(a, b)));
  }
  // With codes <= 3, two products per int16 lane stay within ±768: one widening step saved.
  static int32x4_t dot_codes(int32x4_t acc, int8x16_t codes, int8x16_t q) {
    return vpadalq_s16(acc, vmlal_high_s8(vmull_s8(vget_low_s8(codes), vget_low_s8(q)), codes, q));
  }

  // The gemm tile (kernels_neon_impl.hpp): the token's 4-byte group L repeated in every row,
  // times the codes with one smlal per 8 bytes into int16 lanes (one product each per step,
  // at most 3·128: a chunk of 64 steps stays below 32767). 2 tokens: 16 accumulators + 4
  // panel vectors + 2 activation vectors + 2 repeated groups = 24 registers.
  struct Acc {
    int16x8_t lo, hi; // rows 0-1 and rows 2-3, the products of their 4 codes
  };
  static constexpr int kTokens = 2;
  static constexpr int64_t kChunk = 256;
  static Acc tile_zero() { return {vdupq_n_s16(0), vdupq_n_s16(0)}; }
  template <int L> static Acc tile_step(Acc acc, int8x16_t codes, int8x16_t act) {
    const int8x16_t a = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(act), L));
    return {vmlal_s8(acc.lo, vget_low_s8(codes), vget_low_s8(a)), vmlal_high_s8(acc.hi, codes, a)};
  }
  static int32x4_t tile_widen(Acc acc) {
    return vpaddq_s32(vpaddlq_s16(acc.lo), vpaddlq_s16(acc.hi));
  }
};

} // namespace

const Table& table_neon() {
  static const Table table = make_neon_table<DotNeon>(Isa::neon);
  return table;
}

} // namespace bitnet::kernels
