// Internal: the tile configuration of the AMX kernels (kernels_amx.cpp) and of their probe
// (probes/probes_amx.cpp). Internal linkage for the reason given in kernel_common.hpp.
#pragma once

#include <cstdint>

namespace bitnet::kernels {
namespace {

// ldtilecfg's 64-byte operand, palette 1: the eight tiles at 16 rows of 64 bytes. Each thread
// loads it before its first tile instruction and releases the tiles after its last.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

} // namespace
} // namespace bitnet::kernels
