// Armv8.2 NEON kernels with the dot-product extension (compiled with
// BITNET_FLAGS_NEON_DOTPROD; selected only when HWCAP reports asimddp). sdot is exact for
// any int8 operands, so both dot forms are the same instruction.
#include "kernels/kernels_neon_impl.hpp"

namespace bitnet::kernels {
namespace {

struct DotProd {
  static int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
  static int32x4_t quads(int8x16_t a, int8x16_t b) { return vdotq_s32(vdupq_n_s32(0), a, b); }
  static int32x4_t dot_codes(int32x4_t acc, int8x16_t codes, int8x16_t q) {
    return vdotq_s32(acc, codes, q);
  }

  // The gemm tile (kernels_neon_impl.hpp): sdot by element multiplies 4 rows' codes by the
  // token's 4-byte group L in every row. 5 tokens: 20 accumulators + 4 panel vectors + 5
  // activation vectors = 29 of the 32 registers.
  using Acc = int32x4_t;
  static constexpr int kTokens = 5;
  static constexpr int64_t kChunk = 512;
  static Acc tile_zero() { return vdupq_n_s32(0); }
  template <int L> static Acc tile_step(Acc acc, int8x16_t codes, int8x16_t act) {
    return vdotq_laneq_s32(acc, codes, act, L);
  }
  static int32x4_t tile_widen(Acc acc) { return acc; }
};

} // namespace

const Table& table_neon_dotprod() {
  static const Table table = make_neon_table<DotProd>(Isa::neon_dotprod);
  return table;
}

} // namespace bitnet::kernels
