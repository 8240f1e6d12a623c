// I2_S packing exactly as bitnet.cpp's quantize_i2_s writes it (docs/gguf-format.md §3): 2-bit
// codes in 128-weight blocks of 32 bytes, then one f32 scale and 28 zero bytes per tensor.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace bitnet::gguf {

inline constexpr uint64_t kI2sBlock = 128;       // weights per packed block
inline constexpr uint64_t kI2sTrailerBytes = 32; // f32 scale + 28 padding bytes

// Packs whole blocks of ternary weights (each in {-1,0,+1}, count a multiple of 128) into
// count/4 code bytes. Lets a writer stream a tensor one row block at a time.
void pack_i2s_codes(std::span<const int8_t> ternary, std::span<uint8_t> out);
// The 32 bytes that follow a tensor's codes: the scale (little-endian f32), then zeros.
std::array<uint8_t, kI2sTrailerBytes> i2s_trailer(float scale);

// codes: one int8 per weight in {-1,0,+1}, n % 128 == 0; writes n/4 + 32 bytes
// (packed codes, f32 scale, 28 zero bytes) exactly as bitnet.cpp's quantize_i2_s
// (docs/gguf-format.md §3).
void pack_i2s(std::span<const int8_t> ternary, float scale, std::span<uint8_t> out);
// inverse, for tests and tools: ternary values and the scale. Code 3, which bitnet.cpp never
// writes, is an Error(format).
float unpack_i2s(std::span<const uint8_t> packed, uint64_t n, std::span<int8_t> ternary);

} // namespace bitnet::gguf
