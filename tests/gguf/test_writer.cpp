// Writer → File round trips of every value type and every tensor type.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "gguf/gguf.hpp"
#include "support/temp_dir.hpp"

namespace bitnet::gguf {
namespace {

using test::TempDir;

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Deterministic, tensor-specific bytes so a misplaced tensor cannot compare equal.
uint8_t pattern(std::size_t tensor, uint64_t i) {
  return static_cast<uint8_t>((i * 31 + tensor * 7 + (i >> 8)) & 0xFF);
}

Writer::Producer pattern_producer() {
  return [](std::size_t index, const TensorInfo& info, Writer::Sink& sink) {
    std::vector<uint8_t> data(info.nbytes);
    for (uint64_t i = 0; i < info.nbytes; ++i)
      data[i] = pattern(index, i);
    // Two writes, to exercise a producer that streams.
    const std::size_t half = data.size() / 2;
    sink.write(std::span(data).first(half));
    sink.write(std::span(data).subspan(half));
  };
}

std::vector<KeyValue> every_value_type() {
  return {
      {"u8", Value::u8(255)},
      {"i8", Value::i8(-128)},
      {"u16", Value::u16(65535)},
      {"i16", Value::i16(-32768)},
      {"u32", Value::u32(4000000000u)},
      {"i32", Value::i32(-2000000000)},
      {"u64", Value::u64(std::numeric_limits<uint64_t>::max())},
      {"i64", Value::i64(std::numeric_limits<int64_t>::min())},
      {"f32", Value::f32(3.14159f)},
      {"f64", Value::f64(-2.718281828459045)},
      {"bool.true", Value::boolean(true)},
      {"bool.false", Value::boolean(false)},
      {"str", Value::string("héllo \xF0\x9F\x98\x80")},
      {"str.empty", Value::string("")},
      {"arr.empty", Value::array(ValueType::int32, {})},
      {"arr.str", Value::array(ValueType::string,
                               {Value::string("a"), Value::string(""), Value::string("ccc")})},
      {"arr.f32", Value::array(ValueType::float32, {Value::f32(1.5f), Value::f32(-0.0f)})},
      {"arr.bool", Value::array(ValueType::boolean, {Value::boolean(false), Value::boolean(true)})},
      {"arr.u64", Value::array(ValueType::uint64, {Value::u64(1), Value::u64(1ull << 40)})},
      {"arr.i8", Value::array(ValueType::int8, {Value::i8(-1), Value::i8(2)})},
      {"arr.f64", Value::array(ValueType::float64, {Value::f64(0.5)})},
      {"arr.str.empty", Value::array(ValueType::string, {})},
  };
}

TEST(GgufWriter, RoundTripsEveryValueType) {
  TempDir dir;
  Writer w;
  for (const KeyValue& kv : every_value_type())
    w.add_kv(kv.key, kv.value);
  w.write(dir.file("v.gguf"), pattern_producer());

  const File f = File::open(dir.file("v.gguf"));
  EXPECT_EQ(f.version(), 3u);
  const auto expected = every_value_type();
  ASSERT_EQ(f.metadata().size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].key, expected[i].key);
    EXPECT_TRUE(f.metadata()[i].value == expected[i].value) << expected[i].key;
  }
  EXPECT_EQ(f.get_uint("u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.find("i64")->as_int(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(static_cast<float>(f.get_float("f32")), 3.14159f);
  EXPECT_EQ(f.find("arr.f64")->at(0).as_float(), 0.5);
  EXPECT_EQ(f.find("arr.i8")->at(0).as_int(), -1);
  EXPECT_EQ(f.find("arr.str")->string_at(2), "ccc");
  EXPECT_EQ(f.find("arr.str")->at(1), Value::string(""));
  EXPECT_EQ(f.find("arr.bool")->at(1), Value::boolean(true));
  EXPECT_TRUE(f.tensors().empty());
}

TEST(GgufWriter, RoundTripsEveryTensorType) {
  const std::vector<TensorType> types = {TensorType::F32,   TensorType::F16,  TensorType::BF16,
                                         TensorType::Q8_0,  TensorType::Q6_K, TensorType::TQ1_0,
                                         TensorType::TQ2_0, TensorType::I2_S};
  TempDir dir;
  Writer w;
  w.add_kv("general.architecture", Value::string("test"));
  for (TensorType t : types) {
    w.add_tensor(std::string("t.") + type_name(t), t, {block_elements(t) * 2, 3});
  }
  w.add_tensor("t.4d", TensorType::F32, {1, 2, 3, 5});
  w.write(dir.file("t.gguf"), pattern_producer());

  const File f = File::open(dir.file("t.gguf"));
  ASSERT_EQ(f.tensors().size(), types.size() + 1);
  EXPECT_EQ(f.file_size() % 32, 0u);
  for (std::size_t i = 0; i < f.tensors().size(); ++i) {
    const TensorInfo& t = f.tensors()[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.offset, w.tensors()[i].offset);
    EXPECT_EQ(t.offset % 32, 0u);
    EXPECT_EQ(t.ne, w.tensors()[i].ne);
    EXPECT_EQ(t.type, w.tensors()[i].type);
    const auto data = f.tensor_data(t);
    ASSERT_EQ(data.size(), t.nbytes);
    for (uint64_t j = 0; j < data.size(); ++j)
      ASSERT_EQ(data[j], pattern(i, j)) << "byte " << j;
  }
  // Sizes from the ggml block tables (docs/gguf-format.md §2), I2_S as n/4 + 32.
  EXPECT_EQ(f.find_tensor("t.F32")->nbytes, 2u * 3u * 4u);
  EXPECT_EQ(f.find_tensor("t.Q8_0")->nbytes, 2u * 3u * 34u);
  EXPECT_EQ(f.find_tensor("t.Q6_K")->nbytes, 2u * 3u * 210u);
  EXPECT_EQ(f.find_tensor("t.TQ1_0")->nbytes, 2u * 3u * 54u);
  EXPECT_EQ(f.find_tensor("t.TQ2_0")->nbytes, 2u * 3u * 66u);
  EXPECT_EQ(f.find_tensor("t.I2_S")->nbytes, 256u * 3u / 4u + 32u);
  EXPECT_EQ(f.find_tensor("t.4d")->ne, (std::vector<uint64_t>{1, 2, 3, 5}));
}

TEST(GgufWriter, CustomAlignment) {
  TempDir dir;
  Writer w(64);
  EXPECT_THROW(w.write(dir.file("a.gguf"), pattern_producer()), Error); // key not declared
  EXPECT_THROW(w.add_kv("general.alignment", Value::u32(32)), Error);
  w.add_kv("general.alignment", Value::u32(64));
  w.add_tensor("a", TensorType::F32, {3});
  w.add_tensor("b", TensorType::F32, {3});
  w.write(dir.file("a.gguf"), pattern_producer());
  const File f = File::open(dir.file("a.gguf"));
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.find_tensor("b")->offset, 64u);
  EXPECT_EQ(f.tensor_data(*f.find_tensor("b"))[0], pattern(1, 0));
}

TEST(GgufWriter, RejectsBadDeclarations) {
  Writer w;
  w.add_kv("k", Value::u8(1));
  EXPECT_THROW(w.add_kv("k", Value::u8(2)), Error);
  w.add_tensor("t", TensorType::F32, {4});
  EXPECT_THROW(w.add_tensor("t", TensorType::F32, {4}), Error);
  EXPECT_THROW(w.add_tensor("u", TensorType::F32, {}), Error);
  EXPECT_THROW(w.add_tensor("u", TensorType::F32, {1, 1, 1, 1, 1}), Error);
  EXPECT_THROW(w.add_tensor("u", TensorType::F32, {4, 0}), Error);
  EXPECT_THROW(w.add_tensor("u", TensorType::I2_S, {64, 2}), Error);
  EXPECT_THROW(w.add_tensor(std::string(65, 'x'), TensorType::F32, {4}), Error);
  EXPECT_THROW(Value::array(ValueType::string, {Value::u8(1)}), Error);
  EXPECT_THROW(Writer(24), Error);
}

TEST(GgufWriter, ShortProducerLeavesNoFile) {
  TempDir dir;
  Writer w;
  w.add_tensor("t", TensorType::F32, {8});
  const std::string path = dir.file("short.gguf");
  try {
    w.write(path, [](std::size_t, const TensorInfo&, Writer::Sink& sink) {
      const uint8_t byte = 0;
      sink.write({&byte, 1});
    });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 't': producer wrote 1 bytes, expected 32"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(std::filesystem::is_empty(std::filesystem::path(path).parent_path()));
}

TEST(GgufWriter, UnwritableDirectoryIsIoError) {
  Writer w;
  try {
    w.write("/nonexistent-dir/x.gguf", pattern_producer());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
  }
}

TEST(GgufWriter, Version2FileParsesLikeVersion3) {
  TempDir dir;
  Writer w;
  for (const KeyValue& kv : every_value_type())
    w.add_kv(kv.key, kv.value);
  w.add_tensor("w", TensorType::I2_S, {128, 4});
  w.write(dir.file("v3.gguf"), pattern_producer());
  std::vector<uint8_t> bytes = read_bytes(dir.file("v3.gguf"));
  ASSERT_EQ(bytes[4], 3);
  bytes[4] = 2; // v2 and v3 differ only in the version field (v3 added big-endian files)
  const File f = File::parse(bytes);
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.metadata().size(), every_value_type().size());
  EXPECT_EQ(f.find_tensor("w")->nbytes, 128u * 4u / 4u + 32u);
  EXPECT_EQ(f.tensor_data(*f.find_tensor("w"))[5], pattern(0, 5));
}

TEST(GgufTypes, Names) {
  EXPECT_EQ(type_from_name("i2_s"), TensorType::I2_S);
  EXPECT_EQ(type_from_name("Q8_0"), TensorType::Q8_0);
  EXPECT_EQ(type_from_name("q4_k"), TensorType::Q4_K);
  EXPECT_EQ(type_from_name("q4"), std::nullopt);
  EXPECT_EQ(type_from_id(36), TensorType::I2_S);
  EXPECT_EQ(type_from_id(2), TensorType::Q4_0);
  EXPECT_EQ(type_from_id(4), std::nullopt);  // removed from ggml
  EXPECT_EQ(type_from_id(37), std::nullopt); // the fork's runtime-only I8_S
  // ggml's type_size/blck_size (ggml-common.h block structs).
  EXPECT_EQ(tensor_nbytes(TensorType::Q4_0, 64), 36u);
  EXPECT_EQ(tensor_nbytes(TensorType::Q4_K, 256), 144u);
  EXPECT_EQ(tensor_nbytes(TensorType::IQ4_XS, 512), 272u);
  EXPECT_EQ(tensor_nbytes(TensorType::MXFP4, 32), 17u);
  EXPECT_EQ(tensor_nbytes(TensorType::TL1, 256), 96u);
  EXPECT_STREQ(type_name(TensorType::BF16), "BF16");
  EXPECT_THROW(tensor_nbytes(TensorType::Q8_0, 33), Error);
  EXPECT_THROW(tensor_nbytes(TensorType::F32, std::numeric_limits<uint64_t>::max()), Error);
}

TEST(GgufValue, TypedReads) {
  EXPECT_EQ(Value::i32(5).as_uint(), 5u);
  EXPECT_THROW(Value::i32(-5).as_uint(), Error);
  EXPECT_EQ(Value::u8(7).as_int(), 7);
  EXPECT_THROW(Value::u64(std::numeric_limits<uint64_t>::max()).as_int(), Error);
  EXPECT_THROW(Value::f32(1.0f).as_uint(), Error);
  EXPECT_THROW(Value::u32(1).as_float(), Error);
  EXPECT_THROW(Value::string("x").as_bool(), Error);
  EXPECT_THROW(Value::u8(1).elem_type(), Error);
  try {
    Value::u8(1).as_string();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::format);
    EXPECT_STREQ(e.what(), "expected string, found uint8");
  }
}

} // namespace
} // namespace bitnet::gguf
