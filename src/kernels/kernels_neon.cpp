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
};

} // namespace

const Table& table_neon() {
  static const Table table = make_neon_table<DotNeon>(Isa::neon);
  return table;
}

} // namespace bitnet::kernels
