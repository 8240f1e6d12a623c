// Reading the reference models written by the independent Python synthesiser and by
// bitnet.cpp's llama-quantize.
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gguf/gguf.hpp"
#include "gguf/i2s.hpp"
#include "support/temp_dir.hpp"

namespace bitnet::gguf {
namespace {

const std::string kModels = std::string(BITNET_TEST_DATA_DIR) + "/reference/models/";

TEST(GgufReader, ReadsReferenceModelA) {
  const File f = File::open(kModels + "A.gguf");
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.file_size(), 2866816u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.architecture(), "bitnet-b1.58");
  EXPECT_EQ(f.get_uint("bitnet-b1.58.embedding_length"), 512u);
  EXPECT_EQ(f.get_uint("bitnet-b1.58.block_count"), 3u);
  EXPECT_EQ(f.get_uint("bitnet-b1.58.attention.head_count_kv"), 1u);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get_float("bitnet-b1.58.rope.freq_base")), 500000.0f);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.find_bool("tokenizer.ggml.add_bos_token"), true);
  EXPECT_EQ(f.get_uint("tokenizer.ggml.bos_token_id"), 668u);
  const Value* tokens = f.find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->elem_type(), ValueType::string);
  ASSERT_EQ(tokens->size(), 678u);
  EXPECT_EQ(tokens->string_at(0), "!");
  EXPECT_EQ(tokens->string_at(668), "<|begin_of_text|>");

  // 1 embedding + 3 layers x 11 + output_norm (tied output head).
  ASSERT_EQ(f.tensors().size(), 35u);
  const TensorInfo* embd = f.find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->type, TensorType::F16);
  EXPECT_EQ(embd->ne, (std::vector<uint64_t>{512, 678}));
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  const TensorInfo* q = f.find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, TensorType::I2_S);
  EXPECT_EQ(q->nbytes, 512u * 512u / 4u + 32u);
  EXPECT_EQ(f.tensor_data(*q).size(), q->nbytes);
  EXPECT_EQ(f.data_offset() % 32, 0u);
}

TEST(GgufReader, ReferenceI2sWeightsAreTernaryWithAbsmaxScale) {
  const File f = File::open(kModels + "A.gguf");
  const TensorInfo* t = f.find_tensor("blk.1.ffn_down.weight");
  ASSERT_NE(t, nullptr);
  std::vector<int8_t> w(t->n_elements());
  const float scale = unpack_i2s(f.tensor_data(*t), w.size(), w);
  EXPECT_GT(scale, 0.0f);
  std::size_t counts[3] = {};
  for (int8_t v : w)
    ++counts[v + 1];
  // Synthetic weights have about a third zeros and both signs present.
  EXPECT_GT(counts[0], w.size() / 5);
  EXPECT_GT(counts[1], w.size() / 5);
  EXPECT_GT(counts[2], w.size() / 5);
}

TEST(GgufReader, ReadsAllReferenceModels) {
  for (const char* name :
       {"A.gguf", "A-f16.gguf", "A-f16.llama-quantize-I2_S.gguf", "B.gguf", "C.gguf", "D.gguf"}) {
    SCOPED_TRACE(name);
    const File f = File::open(kModels + name);
    EXPECT_FALSE(f.architecture().empty());
    for (const TensorInfo& t : f.tensors()) {
      EXPECT_EQ(f.tensor_data(t).size(), t.nbytes) << t.name;
    }
  }
  EXPECT_EQ(File::open(kModels + "B.gguf").find_tensor("token_embd.weight")->type,
            TensorType::Q8_0);
  EXPECT_EQ(File::open(kModels + "D.gguf").find_tensor("output.weight")->type, TensorType::F16);
  EXPECT_EQ(File::open(kModels + "D.gguf").architecture(), "llama");
}

// copy() reads with pread: a range that was in the file when it was opened but is no longer
// there is the file changing under us (format, as the SIGBUS guard says), not a read error.
TEST(GgufReader, CopyAfterTruncationSaysTheFileChanged) {
  test::TempDir dir;
  const std::string path = dir.file("A.gguf");
  std::filesystem::copy_file(kModels + "A.gguf", path);
  const File f = File::open(path);
  const TensorInfo& last = f.tensors().back();
  const auto data = f.tensor_data(last);
  std::vector<uint8_t> out(data.size());
  f.copy(data, out.data());
  std::filesystem::resize_file(path, 1024);
  try {
    f.copy(data, out.data());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::format);
    EXPECT_EQ(std::string(e.what()), path + ": the file changed or was truncated while in use");
  }
}

TEST(GgufReader, MissingFileIsIoError) {
  try {
    File::open(kModels + "does-not-exist.gguf");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_NE(std::string(e.what()).find("does-not-exist.gguf"), std::string::npos);
  }
  try {
    File::open(kModels);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
  }
}

TEST(GgufReader, TypedGettersNameTheKey) {
  const File f = File::open(kModels + "A.gguf");
  try {
    f.get_uint("general.architecture");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::format);
    EXPECT_NE(std::string(e.what()).find("general.architecture"), std::string::npos);
  }
  try {
    f.get_string("no.such.key");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing key 'no.such.key'"), std::string::npos);
  }
  EXPECT_EQ(f.find_uint("no.such.key"), std::nullopt);
}

} // namespace
} // namespace bitnet::gguf
