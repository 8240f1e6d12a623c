// AMX probes: AVX-512's streaming reads, and tdpbsud (16 × 16 int32 sums, each of 64 products
// of signed by unsigned int8): the MAC step of the amx I2_S gemm.
#include <immintrin.h>

#include <cstring>

#include "kernels/amx_common.hpp"
#include "probes/probes.hpp"

namespace bitnet::probes {
namespace {

// Four independent accumulator tiles from two A and two B tiles, as the gemm's tile: each
// tdpbsud waits only for its own accumulator's previous one.
uint64_t mac_loop(int64_t iters) {
  static const kernels::TileConfig config;
  alignas(64) int8_t a[16 * 64];
  alignas(64) int32_t c[16 * 16];
  std::memset(a, 1, sizeof a);
  _tile_loadconfig(&config);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, a, 64);
  _tile_loadd(5, a, 64);
  _tile_loadd(6, a, 64);
  _tile_loadd(7, a, 64);
  for (int64_t n = 0; n < iters; ++n) {
    _tile_dpbsud(0, 4, 6);
    _tile_dpbsud(1, 4, 7);
    _tile_dpbsud(2, 5, 6);
    _tile_dpbsud(3, 5, 7);
  }
  uint64_t sum = 0;
  const auto add = [&] {
    for (int32_t v : c)
      sum += static_cast<uint32_t>(v);
  };
  _tile_stored(0, c, 64);
  add();
  _tile_stored(3, c, 64);
  add();
  _tile_release();
  return sum;
}

} // namespace

const Probe& probe_amx() {
  static const Probe p{"amx", "tdpbsud (AMX-INT8)", probe_avx512().stream_sum, mac_loop,
                       4 * 16 * 16 * 64};
  return p;
}

} // namespace bitnet::probes
