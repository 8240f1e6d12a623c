// What reading metadata costs in memory. Regression: each 1-byte array item used to cost
// about 48 bytes (one Value object per item), so a 20 MB file took 964 MB for `info`. The
// reader must stay within 4x the metadata size. This binary counts every operator new, so
// the peak during the parse is measured, temporaries included.
#include <cstdint>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "gguf/gguf.hpp"
#include "gguf_bytes.hpp"

// Bytes currently allocated through operator new, and the most since the last reset
// (counting_new.cpp, its own translation unit so GCC does not inline it here).
int64_t allocated_bytes();
void reset_peak();
int64_t peak_bytes();

namespace bitnet::gguf {
namespace {

using testing::Bytes;

// Peak bytes allocated while parsing `b`, above what was live before.
int64_t parse_peak(const Bytes& b) {
  const int64_t before = allocated_bytes();
  reset_peak();
  {
    const File f = File::parse(b.data, "big.gguf");
    EXPECT_FALSE(f.metadata().empty());
  }
  return peak_bytes() - before;
}

TEST(GgufMemory, ByteArrayCostsItsSize) {
  constexpr uint64_t kItems = 20'000'000; // the finding's 20 MB file
  Bytes b;
  b.data.reserve(kItems + 64);
  b.header(3, 0, 1).str("big").put<uint32_t>(9).put<uint32_t>(0).put<uint64_t>(kItems);
  b.fill(kItems, 7);
  const int64_t peak = parse_peak(b);
  std::printf("20M uint8 items, %zu bytes of metadata: peak %lld bytes (%.2fx)\n", b.size(),
              static_cast<long long>(peak), static_cast<double>(peak) / b.size());
  EXPECT_LE(peak, 4 * static_cast<int64_t>(b.size()));
  EXPECT_GE(peak, static_cast<int64_t>(kItems)); // the items are held (the count works)
}

TEST(GgufMemory, StringArrayCostsItsSize) {
  constexpr uint64_t kItems = 2'000'000; // 1-byte strings: 9 bytes each in the file
  Bytes b;
  b.data.reserve(kItems * 10 + 128);
  b.header(3, 0, 2).str("words").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(kItems);
  for (uint64_t i = 0; i < kItems; ++i)
    b.str(std::string(1, static_cast<char>('a' + i % 26)));
  b.str("flags").put<uint32_t>(9).put<uint32_t>(7).put<uint64_t>(kItems).fill(kItems, 1);
  const int64_t peak = parse_peak(b);
  std::printf("2M 1-byte strings + 2M bools, %zu bytes of metadata: peak %lld bytes (%.2fx)\n",
              b.size(), static_cast<long long>(peak), static_cast<double>(peak) / b.size());
  EXPECT_LE(peak, 4 * static_cast<int64_t>(b.size()));
  const File f = File::parse(b.data, "big.gguf");
  EXPECT_EQ(f.find("words")->size(), kItems);
  EXPECT_EQ(f.find("words")->string_at(27), "b");
  EXPECT_EQ(f.find("flags")->at(kItems - 1), Value::boolean(true));
}

} // namespace
} // namespace bitnet::gguf
