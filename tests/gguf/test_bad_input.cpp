// Corrupt, truncated and hostile GGUF bytes: each must raise Error(format) naming the
// problem, never crash or allocate by an unchecked count.
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "gguf/gguf.hpp"
#include "gguf_bytes.hpp"

namespace bitnet::gguf {
namespace {

using testing::Bytes;

constexpr uint32_t kF32 = 0;
constexpr uint32_t kF16 = 1;
constexpr uint32_t kI2S = 36;

// Expects parse() to throw Error(format) whose message contains every fragment.
void expect_format_error(const Bytes& b, std::initializer_list<std::string_view> fragments) {
  try {
    File::parse(b.data, "bad.gguf");
    ADD_FAILURE() << "parsed without error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::format) << e.what();
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("bad.gguf: ", 0), 0u) << msg;
    for (std::string_view f : fragments)
      EXPECT_NE(msg.find(f), std::string::npos) << msg;
  }
}

// A small valid file: two KVs (one an array of strings), an F32 tensor and an I2_S tensor
// whose data ends exactly at the end of the file.
Bytes valid_file() {
  Bytes b;
  b.header(3, 2, 2).kv_str("general.architecture", "bitnet-b1.58");
  b.str("tokenizer.ggml.tokens")
      .put<uint32_t>(9)
      .put<uint32_t>(8)
      .put<uint64_t>(2)
      .str("a")
      .str("bc");
  b.tensor("norm", {8}, kF32, 0).tensor("w", {128, 2}, kI2S, 32).pad();
  b.fill(32, 0x11).fill(128 * 2 / 4 + 32, 0x55);
  return b;
}

TEST(GgufBadInput, ValidFileParses) {
  const Bytes b = valid_file();
  const File f = File::parse(b.data);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[1].nbytes, 96u);
  EXPECT_EQ(f.data_offset() + 32 + 96, b.size());
  EXPECT_EQ(f.find("tokenizer.ggml.tokens")->string_at(1), "bc");
}

TEST(GgufBadInput, EveryTruncationIsAnError) {
  const Bytes full = valid_file();
  for (std::size_t n = 0; n < full.size(); ++n) {
    Bytes b;
    b.data.assign(full.data.begin(), full.data.begin() + static_cast<std::ptrdiff_t>(n));
    SCOPED_TRACE(n);
    expect_format_error(b, {});
  }
}

TEST(GgufBadInput, BadMagic) {
  Bytes b = valid_file();
  b.data[0] = 'X';
  expect_format_error(b, {"magic at byte 0", "expected \"GGUF\"", "found 58 47 55 46"});
}

TEST(GgufBadInput, BadVersion) {
  for (uint32_t v : {0u, 1u, 4u, 0x03000000u}) {
    Bytes b = valid_file();
    std::memcpy(b.data.data() + 4, &v, 4);
    expect_format_error(b, {"version at byte 4", "expected 2 or 3", std::to_string(v)});
  }
  Bytes b = valid_file();
  const uint32_t big_endian_3 = 0x03000000u;
  std::memcpy(b.data.data() + 4, &big_endian_3, 4);
  expect_format_error(b, {"big-endian"});
}

TEST(GgufBadInput, HugeCounts) {
  constexpr uint64_t kHuge = std::numeric_limits<uint64_t>::max();
  {
    Bytes b;
    b.header(3, 0, kHuge).kv_u32("a", 1);
    expect_format_error(b, {"metadata count", std::to_string(kHuge)});
  }
  {
    Bytes b;
    b.header(3, uint64_t{1} << 40, 0).tensor("t", {8}, kF32, 0);
    expect_format_error(b, {"tensor count", "expected at most"});
  }
  {
    Bytes b;
    b.header(3, 0, 1).put<uint64_t>(kHuge).fill(8, 'k');
    expect_format_error(b, {"metadata key #0", "string length", std::to_string(kHuge)});
  }
  {
    Bytes b;
    b.header(3, 0, 1).str("k").put<uint32_t>(8).put<uint64_t>(uint64_t{1} << 62);
    expect_format_error(b, {"value of key 'k'", "string length"});
  }
  {
    Bytes b;
    b.header(3, 0, 1).str("k").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(kHuge / 2);
    expect_format_error(b, {"value of key 'k' (array count)", "expected at most 0 uint32 items"});
  }
  {
    // An array of strings needs at least 8 bytes per item.
    Bytes b;
    b.header(3, 0, 1).str("k").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(3).fill(16, 0);
    expect_format_error(b, {"(array count)", "expected at most 2 string items", "found 3"});
  }
  {
    Bytes b;
    b.header(3, 1, 0).put<uint64_t>(kHuge).fill(40, 0);
    expect_format_error(b, {"tensor name", "string length"});
  }
}

TEST(GgufBadInput, UnknownValueTypes) {
  {
    Bytes b;
    b.header(3, 0, 1).str("k").put<uint32_t>(13).put<uint32_t>(0);
    expect_format_error(b, {"type of key 'k' at byte 33", "expected a value type 0..12", "13"});
  }
  {
    Bytes b;
    b.header(3, 0, 1).str("k").put<uint32_t>(9).put<uint32_t>(77).put<uint64_t>(0);
    expect_format_error(b, {"value of key 'k' (array type)", "found 77"});
  }
}

TEST(GgufBadInput, BadValues) {
  {
    Bytes b;
    b.header(3, 0, 1).str("flag").put<uint32_t>(7).put<uint8_t>(2);
    expect_format_error(b, {"value of key 'flag'", "expected bool 0 or 1, found 2"});
  }
  {
    Bytes b;
    b.header(3, 0, 1).str("").put<uint32_t>(4).put<uint32_t>(1);
    expect_format_error(b, {"metadata key #0", "non-empty key"});
  }
  {
    // A bool array item other than 0 or 1.
    Bytes b;
    b.header(3, 0, 1).str("flags").put<uint32_t>(9).put<uint32_t>(7).put<uint64_t>(3);
    b.put<uint8_t>(1).put<uint8_t>(0).put<uint8_t>(7);
    expect_format_error(b, {"value of key 'flags' at byte 55", "expected bool 0 or 1, found 7"});
  }
}

// ggml's reader rejects arrays of arrays; so does this one, as a file it cannot read.
TEST(GgufBadInput, ArraysOfArraysAreUnsupported) {
  Bytes b;
  b.header(3, 0, 1).str("nested").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(1);
  b.put<uint32_t>(0).put<uint64_t>(0);
  try {
    File::parse(b.data, "bad.gguf");
    ADD_FAILURE() << "parsed without error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported) << e.what();
    EXPECT_STREQ(e.what(), "bad.gguf: value of key 'nested' at byte 42: arrays of arrays are not "
                           "supported (ggml rejects them too)");
  }
}

// Counts far beyond any real file are refused before anything is reserved for them.
TEST(GgufBadInput, KeyAndTensorCountLimits) {
  {
    Bytes b;
    b.header(3, 0, 65537);
    for (int i = 0; i < 65537; ++i)
      b.str("k").put<uint32_t>(0).put<uint8_t>(0);
    expect_format_error(b, {"metadata count at byte 16", "expected at most 65536 (this reader's "
                                                         "limit), found 65537"});
  }
  {
    Bytes b;
    b.header(3, 65537, 0).fill(65537 * 40, 0);
    expect_format_error(b, {"tensor count at byte 8", "expected at most 65536"});
  }
}

// Every ggml type is read and sized (so `info` describes ordinary llama.cpp files); id 39 is
// MXFP4, except in a bitnet.cpp architecture, where it is TL2, which cannot be read.
TEST(GgufBadInput, KnownGgmlTypesAreRead) {
  Bytes b;
  b.header(3, 3, 0)
      .tensor("q4_0", {64}, 2, 0)
      .tensor("q4_k", {256}, 12, 64)
      .tensor("mx", {32}, 39, 224);
  b.pad().fill(256, 0);
  const File f = File::parse(b.data, "types.gguf");
  EXPECT_EQ(f.find_tensor("q4_0")->type, TensorType::Q4_0);
  EXPECT_EQ(f.find_tensor("q4_0")->nbytes, 36u);
  EXPECT_EQ(f.find_tensor("q4_k")->nbytes, 144u);
  EXPECT_EQ(f.find_tensor("mx")->type, TensorType::MXFP4);
  EXPECT_EQ(f.find_tensor("mx")->nbytes, 17u);

  Bytes fork;
  fork.header(3, 1, 1).kv_str("general.architecture", "bitnet-b1.58").tensor("w", {128, 4}, 39, 0);
  fork.pad().fill(256, 0);
  try {
    File::parse(fork.data, "tl2.gguf");
    ADD_FAILURE() << "parsed without error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("TL2 layout in a bitnet-b1.58 file"), std::string::npos)
        << e.what();
  }
}

TEST(GgufBadInput, DuplicateKeysAndTensorNames) {
  {
    Bytes b;
    b.header(3, 0, 2).kv_u32("a.b", 1).kv_u32("a.b", 2);
    expect_format_error(b, {"key 'a.b' at byte 43", "expected a unique key, found a duplicate"});
  }
  {
    Bytes b;
    b.header(3, 2, 0).tensor("t", {8}, kF32, 0).tensor("t", {8}, kF32, 32).pad().fill(64, 0);
    expect_format_error(b, {"tensor 't'", "found a duplicate"});
  }
}

TEST(GgufBadInput, BadTensorInfos) {
  {
    Bytes b;
    b.header(3, 1, 0).tensor("x", {8}, 99, 0).pad().fill(32, 0);
    expect_format_error(b, {"tensor 'x': unknown ggml type id 99"});
  }
  {
    Bytes b;
    b.header(3, 1, 0).tensor("x", {2, 2, 2, 2, 2}, kF32, 0).pad().fill(128, 0);
    expect_format_error(b, {"tensor 'x' n_dims", "expected 1..4, found 5"});
  }
  {
    Bytes b;
    b.header(3, 1, 0).tensor("x", {}, kF32, 0).pad().fill(32, 0);
    expect_format_error(b, {"tensor 'x' n_dims", "found 0"});
  }
  {
    Bytes b;
    b.header(3, 1, 0).tensor("x", {8, 0}, kF32, 0).pad().fill(32, 0);
    expect_format_error(b, {"tensor 'x' ne[1]", "expected a positive size, found 0"});
  }
  {
    Bytes b;
    b.header(3, 1, 0).tensor("x", {uint64_t{1} << 32, uint64_t{1} << 32}, kF32, 0).pad();
    expect_format_error(b, {"tensor 'x' ne[1]", "overflow"});
  }
  {
    Bytes b;
    b.header(3, 1, 0).tensor("w", {64, 2}, kI2S, 0).pad().fill(64, 0);
    expect_format_error(b, {"tensor 'w' ne[0]", "expected a multiple of 128 for I2_S, found 64"});
  }
  {
    Bytes b;
    b.header(3, 1, 0).tensor(std::string(65, 'n'), {8}, kF32, 0).pad().fill(32, 0);
    expect_format_error(b, {"tensor name", "expected 1..64 bytes, found 65 bytes"});
  }
}

TEST(GgufBadInput, TensorOffsets) {
  {
    Bytes b;
    b.header(3, 1, 0).tensor("x", {8}, kF32, 16).pad().fill(64, 0);
    expect_format_error(b,
                        {"tensor 'x' offset", "expected a multiple of the alignment 32, found 16"});
  }
  {
    Bytes b;
    b.header(3, 1, 0).tensor("x", {8}, kF32, 64).pad().fill(64, 0);
    expect_format_error(b, {"tensor 'x' data", "expected 32 bytes, found 0 before end of file"});
  }
  {
    Bytes b;
    b.header(3, 1, 0).tensor("x", {8}, kF32, uint64_t{1} << 63).pad().fill(64, 0);
    expect_format_error(b, {"tensor 'x' data", "expected 32 bytes"});
  }
  {
    Bytes b;
    b.header(3, 2, 0).tensor("a", {16}, kF32, 0).tensor("b", {8}, kF16, 32).pad().fill(64, 0);
    expect_format_error(b, {"tensor 'b' data", "overlaps tensor 'a' (64 bytes"});
  }
}

TEST(GgufBadInput, Alignment) {
  {
    Bytes b;
    b.header(3, 0, 1).kv_str("general.alignment", "32");
    expect_format_error(b, {"general.alignment", "expected uint32, found string"});
  }
  {
    Bytes b;
    b.header(3, 0, 1).kv_u32("general.alignment", 24);
    expect_format_error(b, {"general.alignment", "expected a power of two, found 24"});
  }
  {
    // With alignment 64 an offset of 32 is misaligned.
    Bytes b;
    b.header(3, 1, 1)
        .kv_u32("general.alignment", 64)
        .tensor("x", {8}, kF32, 32)
        .pad(64)
        .fill(128, 0);
    expect_format_error(b, {"expected a multiple of the alignment 64, found 32"});
  }
  {
    Bytes b;
    b.header(3, 1, 1)
        .kv_u32("general.alignment", 64)
        .tensor("x", {8}, kF32, 64)
        .pad(64)
        .fill(128, 0);
    const File f = File::parse(b.data);
    EXPECT_EQ(f.alignment(), 64u);
    EXPECT_EQ(f.data_offset() % 64, 0u);
  }
}

TEST(GgufBadInput, ReadsVersion2) {
  Bytes b = valid_file();
  const uint32_t v2 = 2;
  std::memcpy(b.data.data() + 4, &v2, 4);
  const File f = File::parse(b.data);
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.architecture(), "bitnet-b1.58");
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensor_data(f.tensors()[0])[0], 0x11);
}

TEST(GgufBadInput, FileWithoutTensorsNeedsNoPadding) {
  Bytes b;
  b.header(3, 0, 1).kv_u32("a", 7);
  const File f = File::parse(b.data);
  EXPECT_EQ(f.get_uint("a"), 7u);
  EXPECT_TRUE(f.tensors().empty());
}

} // namespace
} // namespace bitnet::gguf
