// Armv8.2 dotprod probe: sdot (four int8 products summed into each int32 lane), the MAC step
// of the neon_dotprod I2_S kernel. Streaming reads are plain NEON's.
#include <arm_neon.h>

#include "probes/probes.hpp"

namespace bitnet::probes {
namespace {

// sdot has a latency of 3-4 cycles at up to 4 per cycle on big cores: 16 chains cover it,
// each the product of its own (a, b) pair so none can be shared.
constexpr int kA = 2;
constexpr int kB = 8;
constexpr int kChains = kA * kB;

uint64_t mac_loop(int64_t iters) {
  int8x16_t a[kA], b[kB];
  int32x4_t acc[kChains];
  for (int i = 0; i < kA; ++i)
    a[i] = vdupq_n_s8(static_cast<int8_t>(i + 1));
  for (int j = 0; j < kB; ++j)
    b[j] = vdupq_n_s8(static_cast<int8_t>(j + 3));
  for (int c = 0; c < kChains; ++c)
    acc[c] = vdupq_n_s32(0);
  for (int64_t n = 0; n < iters; ++n) {
    for (int i = 0; i < kA; ++i)
      __asm__ volatile("" : "+w"(a[i]));
    for (int i = 0; i < kA; ++i)
      for (int j = 0; j < kB; ++j)
        acc[i * kB + j] = vdotq_s32(acc[i * kB + j], a[i], b[j]);
  }
  int32x4_t s = acc[0];
  for (int c = 1; c < kChains; ++c)
    s = vaddq_s32(s, acc[c]);
  return static_cast<uint64_t>(vaddvq_s32(s));
}

} // namespace

const Probe& probe_neon_dotprod() {
  static const Probe p{"neon_dotprod", "sdot (NEON dotprod)", probe_neon().stream_sum, mac_loop,
                       kChains * 16};
  return p;
}

} // namespace bitnet::probes
