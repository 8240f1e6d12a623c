// Armv8.0 NEON probes: 128-bit streaming loads, and smlal (8 int8 products added to int16
// lanes): the MAC step of the neon I2_S gemm.
#include <arm_neon.h>

#include "probes/probes.hpp"

namespace bitnet::probes {
namespace {

uint64_t stream_sum(const uint8_t* p, size_t n) {
  uint64x2_t acc[4] = {vdupq_n_u64(0), vdupq_n_u64(0), vdupq_n_u64(0), vdupq_n_u64(0)};
  for (size_t i = 0; i < n; i += 64)
    for (int j = 0; j < 4; ++j)
      acc[j] = vaddq_u64(acc[j], vld1q_u64(reinterpret_cast<const uint64_t*>(p + i + 16 * j)));
  return vaddvq_u64(vaddq_u64(vaddq_u64(acc[0], acc[1]), vaddq_u64(acc[2], acc[3])));
}

// smlal has a latency of 3-4 cycles at up to 4 per cycle on big cores: 16 chains cover it
// (objdump: 16 smlal per round). The multiply and the add are one instruction, so nothing
// can be hoisted and the chains may share operands.
constexpr int kChains = 16;

uint64_t mac_loop(int64_t iters) {
  int8x8_t a = vdup_n_s8(1);
  const int8x8_t b[2] = {vdup_n_s8(3), vdup_n_s8(4)};
  int16x8_t acc[kChains]; // distinct start values: no two chains can be merged
  for (int c = 0; c < kChains; ++c)
    acc[c] = vdupq_n_s16(static_cast<int16_t>(c));
  for (int64_t n = 0; n < iters; ++n) {
    __asm__ volatile("" : "+w"(a));
    for (int c = 0; c < kChains; ++c)
      acc[c] = vmlal_s8(acc[c], a, b[c % 2]);
  }
  int16x8_t s = acc[0];
  for (int c = 1; c < kChains; ++c)
    s = vaddq_s16(s, acc[c]);
  return static_cast<uint64_t>(vaddlvq_s16(s));
}

} // namespace

const Probe& probe_neon() {
  static const Probe p{"neon", "smlal (NEON)", stream_sum, mac_loop, kChains * 8};
  return p;
}

} // namespace bitnet::probes
