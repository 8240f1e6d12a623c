#include "gguf/i2s.hpp"

#include <cstring>

#include <fmt/format.h>

#include "bitnet/error.hpp"

namespace bitnet::gguf {

namespace {

constexpr uint64_t kBlockBytes = kI2sBlock / 4;
constexpr uint64_t kGroup = kI2sBlock / 4; // weights g*32 + k share byte k of a block

} // namespace

void pack_i2s_codes(std::span<const int8_t> ternary, std::span<uint8_t> out) {
  const uint64_t n = ternary.size();
  if (n % kI2sBlock != 0 || out.size() != n / 4) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("I2_S packing: {} weights into {} bytes (need a multiple of {} "
                            "weights and weights/4 bytes)",
                            n, out.size(), kI2sBlock));
  }
  for (uint64_t b = 0; b < n / kI2sBlock; ++b) {
    const int8_t* w = ternary.data() + b * kI2sBlock;
    uint8_t* dst = out.data() + b * kBlockBytes;
    for (uint64_t k = 0; k < kBlockBytes; ++k) {
      uint8_t byte = 0;
      for (uint64_t g = 0; g < 4; ++g) {
        const int8_t v = w[g * kGroup + k];
        if (v < -1 || v > 1) {
          throw Error(ErrorKind::invalid_argument,
                      fmt::format("I2_S packing: weight {} is {}, not -1, 0 or +1",
                                  b * kI2sBlock + g * kGroup + k, v));
        }
        // Code = w + 1 (0 → -1, 1 → 0, 2 → +1); group g sits at bit shift 6 - 2g.
        byte |= static_cast<uint8_t>((v + 1) << (6 - 2 * g));
      }
      dst[k] = byte;
    }
  }
}

std::array<uint8_t, kI2sTrailerBytes> i2s_trailer(float scale) {
  std::array<uint8_t, kI2sTrailerBytes> trailer{};
  std::memcpy(trailer.data(), &scale, sizeof(scale));
  return trailer;
}

void pack_i2s(std::span<const int8_t> ternary, float scale, std::span<uint8_t> out) {
  const uint64_t codes = ternary.size() / 4;
  if (out.size() != codes + kI2sTrailerBytes) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("I2_S packing: {} weights need {} bytes, got {}", ternary.size(),
                            codes + kI2sTrailerBytes, out.size()));
  }
  pack_i2s_codes(ternary, out.first(codes));
  const auto trailer = i2s_trailer(scale);
  std::memcpy(out.data() + codes, trailer.data(), trailer.size());
}

float unpack_i2s(std::span<const uint8_t> packed, uint64_t n, std::span<int8_t> ternary) {
  if (n % kI2sBlock != 0 || ternary.size() != n || packed.size() < n / 4 + kI2sTrailerBytes) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("I2_S unpacking: {} weights from {} bytes into {} values", n,
                            packed.size(), ternary.size()));
  }
  for (uint64_t b = 0; b < n / kI2sBlock; ++b) {
    const uint8_t* src = packed.data() + b * kBlockBytes;
    int8_t* w = ternary.data() + b * kI2sBlock;
    for (uint64_t k = 0; k < kBlockBytes; ++k) {
      for (uint64_t g = 0; g < 4; ++g) {
        const int code = (src[k] >> (6 - 2 * g)) & 3;
        if (code == 3) {
          throw Error(ErrorKind::format,
                      fmt::format("I2_S weight {}: code 3 is not a ternary value",
                                  b * kI2sBlock + g * kGroup + k));
        }
        w[g * kGroup + k] = static_cast<int8_t>(code - 1);
      }
    }
  }
  float scale;
  std::memcpy(&scale, packed.data() + n / 4, sizeof(scale));
  return scale;
}

} // namespace bitnet::gguf
