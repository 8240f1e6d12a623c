// Armv8.0 NEON kernels (compiled with BITNET_FLAGS_NEON): the int8 dot widens with
// smull/smlal2 to int16 and pairwise-accumulates into int32 (no sdot before Armv8.2).
#include "kernels/kernels_neon_impl.hpp"

namespace bitnet::kernels {
namespace {

struct DotNeon {
  // Codes are 0..2 and activations -128..127, so two products per int16 lane cannot overflow.
  static int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) {
    const int16x8_t p = vmlal_high_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), a, b);
    return vpadalq_s16(acc, p);
  }
};

} // namespace

const Table& table_neon() {
  static const Table table = make_neon_table<DotNeon>(Isa::neon);
  return table;
}

} // namespace bitnet::kernels
