// I2_S packing against the layout of docs/gguf-format.md §3 and against bitnet.cpp's own bytes.
#include <cstring>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "gguf/gguf.hpp"
#include "gguf/i2s.hpp"
#include "util/fp16.hpp"

namespace bitnet::gguf {
namespace {

std::vector<int8_t> random_ternary(std::size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-1, 1);
  std::vector<int8_t> w(n);
  for (auto& v : w)
    v = static_cast<int8_t>(d(rng));
  return w;
}

TEST(I2s, LayoutMatchesFacts) {
  const std::vector<int8_t> w = random_ternary(384, 1);
  std::vector<uint8_t> packed(384 / 4 + 32, 0xAA);
  pack_i2s(w, 0.75f, packed);
  // Element j of block b: byte 32b + j%32, shift 6 - 2*(j/32) within the block; code w+1.
  for (std::size_t j = 0; j < w.size(); ++j) {
    const std::size_t b = j / 128, r = j % 128;
    const int code = (packed[32 * b + r % 32] >> (6 - 2 * (r / 32))) & 3;
    ASSERT_EQ(code, w[j] + 1) << "element " << j;
  }
  float scale;
  std::memcpy(&scale, packed.data() + 96, 4);
  EXPECT_EQ(scale, 0.75f);
  for (std::size_t k = 100; k < packed.size(); ++k)
    EXPECT_EQ(packed[k], 0) << k;
}

TEST(I2s, RoundTrip) {
  const std::vector<int8_t> w = random_ternary(128 * 5, 2);
  std::vector<uint8_t> packed(w.size() / 4 + 32);
  pack_i2s(w, 1.25f, packed);
  std::vector<int8_t> back(w.size());
  EXPECT_EQ(unpack_i2s(packed, w.size(), back), 1.25f);
  EXPECT_EQ(back, w);
}

TEST(I2s, StreamingPiecesEqualWholeTensor) {
  const std::vector<int8_t> w = random_ternary(128 * 6, 3);
  std::vector<uint8_t> whole(w.size() / 4 + 32);
  pack_i2s(w, 2.0f, whole);
  std::vector<uint8_t> pieces(w.size() / 4);
  pack_i2s_codes(std::span(w).first(256), std::span(pieces).first(64));
  pack_i2s_codes(std::span(w).subspan(256), std::span(pieces).subspan(64));
  EXPECT_TRUE(std::equal(pieces.begin(), pieces.end(), whole.begin()));
  const auto trailer = i2s_trailer(2.0f);
  EXPECT_TRUE(std::equal(trailer.begin(), trailer.end(), whole.begin() + pieces.size()));
}

TEST(I2s, RejectsBadInput) {
  std::vector<int8_t> w(128, 0);
  std::vector<uint8_t> out(63);
  EXPECT_THROW(pack_i2s(w, 1.0f, out), Error); // wrong output size
  std::vector<int8_t> odd(64, 0);
  std::vector<uint8_t> odd_out(16 + 32);
  EXPECT_THROW(pack_i2s(odd, 1.0f, odd_out), Error); // not a multiple of 128
  w[7] = 2;
  out.resize(64);
  EXPECT_THROW(pack_i2s(w, 1.0f, out), Error); // not ternary
  std::vector<uint8_t> code3(64, 0xFF);
  std::vector<int8_t> back(128);
  EXPECT_THROW(unpack_i2s(code3, 128, back), Error);
  EXPECT_THROW(unpack_i2s(std::span(code3).first(40), 128, back), Error); // too short
}

// bitnet.cpp's llama-quantize packed A-f16.gguf's ternary F16 weights into the reference
// file; packing the same weights must give the same code bytes and scale.
TEST(I2s, MatchesBitnetCppQuantizer) {
  const std::string dir = std::string(BITNET_TEST_DATA_DIR) + "/reference/models/";
  const File f16 = File::open(dir + "A-f16.gguf");
  const File ref = File::open(dir + "A-f16.llama-quantize-I2_S.gguf");
  int checked = 0;
  for (const TensorInfo& t : ref.tensors()) {
    if (t.type != TensorType::I2_S) continue;
    SCOPED_TRACE(t.name);
    const TensorInfo* src = f16.find_tensor(t.name);
    ASSERT_NE(src, nullptr);
    ASSERT_EQ(src->type, TensorType::F16);
    const auto bytes = f16.tensor_data(*src);
    const uint64_t n = src->n_elements();
    std::vector<int8_t> w(n);
    float amax = 0.0f;
    for (uint64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      const float x = fp16_to_fp32(h);
      amax = std::max(amax, std::fabs(x));
      w[i] = static_cast<int8_t>(x > 0 ? 1 : (x < 0 ? -1 : 0));
    }
    std::vector<uint8_t> packed(n / 4 + 32);
    pack_i2s(w, amax, packed);
    const auto expected = ref.tensor_data(t);
    ASSERT_EQ(std::memcmp(packed.data(), expected.data(), n / 4 + 4), 0);
    ++checked;
  }
  EXPECT_EQ(checked, 21);
}

} // namespace
} // namespace bitnet::gguf
