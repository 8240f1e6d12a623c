// GgufFile on bytes written field by field (tests/gguf/gguf_bytes.hpp, independent of the
// library's writer), and the convert entry points: synthesize (deterministic, as GgufFile
// reads it back) and quantize (the tensor table llama-quantize writes for the same input).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "bitnet/bitnet.hpp"
#include "gguf/gguf_bytes.hpp"
#include "support/temp_dir.hpp"

namespace bitnet {
namespace {

using gguf::testing::Bytes;

const std::string kModels = std::string(BITNET_TEST_DATA_DIR) + "/reference/models/";

std::string write_bytes(const test::TempDir& dir, const std::vector<uint8_t>& data) {
  const std::string path = dir.file("f.gguf");
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  return path;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(GgufFile, ViewsMetadataAndTensorsInFileOrder) {
  Bytes b;
  b.header(3, 2, 4);
  b.kv_str("general.architecture", "gpt2");
  b.kv_u32("gpt2.block_count", 12);
  b.str("tokenizer.ggml.tokens").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(3);
  b.str("a").str("b").str("<|eot_id|>");
  b.str("x.scale").put<uint32_t>(6).put<float>(0.5f);
  b.tensor("token_embd.weight", {64, 3}, 1, 0); // F16: 384 bytes
  b.tensor("output_norm.weight", {64}, 0, 384); // F32: 256 bytes
  b.pad();
  const uint64_t data_offset = b.size();
  b.fill(384 + 256, 0);
  test::TempDir dir;
  const GgufFile f = GgufFile::open(write_bytes(dir, b.data));

  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.file_size(), b.size());
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset(), data_offset);
  EXPECT_EQ(f.architecture(), "gpt2");

  const std::vector<GgufEntry> md = f.metadata();
  ASSERT_EQ(md.size(), 4u);
  EXPECT_EQ(md[0].key, "general.architecture");
  EXPECT_EQ(md[0].value.type(), GgufType::string);
  EXPECT_EQ(md[1].value.as_uint(), 12u);
  EXPECT_EQ(md[1].value.type(), GgufType::uint32);
  EXPECT_EQ(md[2].value.type(), GgufType::array);
  EXPECT_EQ(md[2].value.elem_type(), GgufType::string);
  ASSERT_EQ(md[2].value.size(), 3u);
  EXPECT_EQ(md[2].value[2].as_string(), "<|eot_id|>");
  EXPECT_EQ(md[3].value.as_float(), 0.5);
  EXPECT_STREQ(to_string(md[3].value.type()), "float32");
  EXPECT_THROW(md[3].value.as_string(), Error); // the wrong type says so
  EXPECT_EQ(f.find("gpt2.block_count")->as_int(), 12);
  EXPECT_FALSE(f.find("general.name").has_value());

  ASSERT_EQ(f.tensors().size(), 2u);
  const GgufTensor& t = f.tensors()[0];
  EXPECT_EQ(t.name, "token_embd.weight");
  EXPECT_EQ(t.type, "F16");
  EXPECT_EQ(t.shape, (std::vector<uint64_t>{64, 3}));
  EXPECT_EQ(t.n_elements, 192u);
  EXPECT_EQ(t.bytes, 384u);
  EXPECT_EQ(t.offset, data_offset);
  EXPECT_EQ(f.tensors()[1].offset, data_offset + 384);

  // A valid file this build cannot run is described, with the loader's reason.
  const auto reason = f.cannot_run_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_NE(reason->find("gpt2"), std::string::npos) << *reason;
  EXPECT_FALSE(GgufFile::open(kModels + "A.gguf").cannot_run_reason().has_value());
}

TEST(GgufFile, BadFilesAreErrors) {
  test::TempDir dir;
  const auto kind = [](const std::string& path) {
    try {
      GgufFile::open(path);
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::invalid_input; // not expected: opened
  };
  EXPECT_EQ(kind(dir.file("missing.gguf")), ErrorKind::io);
  EXPECT_EQ(kind(write_bytes(dir, {'G', 'G', 'U', 'F', 3, 0})), ErrorKind::format);
}

TEST(Convert, SynthesizeIsDeterministicAndReadable) {
  test::TempDir dir;
  SynthOptions options;
  options.seed = 7;
  int calls = 0;
  const SynthSummary a = synthesize(dir.file("a.gguf"), options, [&](uint64_t done, uint64_t all) {
    EXPECT_LE(done, all);
    ++calls;
  });
  const SynthSummary b = synthesize(dir.file("b.gguf"), options);
  EXPECT_GT(calls, 0);
  EXPECT_EQ(slurp(dir.file("a.gguf")), slurp(dir.file("b.gguf")));
  EXPECT_EQ(a.file_size, std::filesystem::file_size(dir.file("a.gguf")));

  const GgufFile f = GgufFile::open(dir.file("a.gguf"));
  EXPECT_EQ(f.tensors().size(), a.n_tensors);
  uint64_t params = 0;
  for (const GgufTensor& t : f.tensors())
    params += t.n_elements;
  EXPECT_EQ(params, b.n_params);
  EXPECT_EQ(f.find("tokenizer.ggml.tokens")->size(), a.n_vocab);
  EXPECT_FALSE(f.cannot_run_reason().has_value());

  EXPECT_EQ(synth_presets(), (std::vector<std::string>{"tiny", "small", "2b4t"}));
  options.preset = "huge";
  EXPECT_THROW(synthesize(dir.file("c.gguf"), options), Error);
  EXPECT_FALSE(std::filesystem::exists(dir.file("c.gguf")));
}

TEST(Convert, QuantizeWritesWhatLlamaQuantizeWrites) {
  test::TempDir dir;
  const QuantizeSummary s = quantize(kModels + "A-f16.gguf", dir.file("q.gguf"));
  const GgufFile ours = GgufFile::open(dir.file("q.gguf"));
  const GgufFile ref = GgufFile::open(kModels + "A-f16.llama-quantize-I2_S.gguf");
  EXPECT_EQ(s.bytes_out, ref.file_size());
  ASSERT_EQ(ours.tensors().size(), ref.tensors().size());
  size_t n_i2s = 0;
  for (size_t i = 0; i < ref.tensors().size(); ++i) {
    EXPECT_EQ(ours.tensors()[i].name, ref.tensors()[i].name);
    EXPECT_EQ(ours.tensors()[i].type, ref.tensors()[i].type) << ref.tensors()[i].name;
    EXPECT_EQ(ours.tensors()[i].shape, ref.tensors()[i].shape);
    EXPECT_EQ(ours.tensors()[i].offset, ref.tensors()[i].offset);
    n_i2s += ref.tensors()[i].type == "I2_S";
  }
  EXPECT_EQ(s.n_quantized, n_i2s);
  EXPECT_EQ(s.n_ternarized, 0u);
  EXPECT_EQ(ours.find("general.file_type")->as_uint(), 40u);
}

} // namespace
} // namespace bitnet
