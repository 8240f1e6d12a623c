// quantize(): byte equality with bitnet.cpp's llama-quantize output, refusal of non-ternary
// weights, absmean ternarization and the Q8_0 output head.
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "support/temp_dir.hpp"
#include "gguf/gguf.hpp"
#include "gguf/i2s.hpp"
#include "gguf/quantize.hpp"
#include "util/fp16.hpp"

namespace bitnet::gguf {
namespace {

using test::TempDir;

const std::string kModels = std::string(BITNET_TEST_DATA_DIR) + "/reference/models/";

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Quantize, ReproducesLlamaQuantizeOutput) {
  TempDir dir;
  const std::string out = dir.file("A-i2s.gguf");
  const QuantizeSummary s = quantize(File::open(kModels + "A-f16.gguf"), out, {});
  EXPECT_EQ(s.n_quantized, 21u);
  EXPECT_EQ(s.n_ternarized, 0u);

  const std::string ref_path = kModels + "A-f16.llama-quantize-I2_S.gguf";
  std::vector<uint8_t> ours = read_bytes(out);
  std::vector<uint8_t> ref = read_bytes(ref_path);
  ASSERT_EQ(ours.size(), ref.size());
  EXPECT_EQ(s.bytes_out, ref.size());
  // The 28 bytes after each I2_S scale are uninitialised memory in llama-quantize's output.
  const File ref_file = File::open(ref_path);
  int masked = 0;
  for (const TensorInfo& t : ref_file.tensors()) {
    if (t.type != TensorType::I2_S) continue;
    const uint64_t pad = ref_file.data_offset() + t.offset + t.n_elements() / 4 + 4;
    for (uint64_t i = pad; i < pad + 28; ++i) {
      EXPECT_EQ(ours[i], 0) << t.name;
      ours[i] = ref[i] = 0;
    }
    ++masked;
  }
  EXPECT_EQ(masked, 21);
  std::size_t first_diff = 0;
  while (first_diff < ours.size() && ours[first_diff] == ref[first_diff])
    ++first_diff;
  EXPECT_EQ(first_diff, ours.size()) << "first differing byte";
}

TEST(Quantize, LinearWeightNames) {
  EXPECT_TRUE(is_linear_weight("blk.0.attn_q.weight", 2));
  EXPECT_TRUE(is_linear_weight("blk.29.ffn_down.weight", 2));
  EXPECT_TRUE(is_linear_weight("blk.3.attn_output.weight", 2));
  EXPECT_FALSE(is_linear_weight("blk.0.attn_q.weight", 1));
  EXPECT_FALSE(is_linear_weight("blk.0.attn_norm.weight", 2));
  EXPECT_FALSE(is_linear_weight("blk.0.attn_sub_norm.weight", 1));
  EXPECT_FALSE(is_linear_weight("blk.x.attn_q.weight", 2));
  EXPECT_FALSE(is_linear_weight("blk..attn_q.weight", 2));
  EXPECT_FALSE(is_linear_weight("blk.0.attn_q.bias", 2));
  EXPECT_FALSE(is_linear_weight("blk.0.attn_qkv.weight", 2));
  EXPECT_FALSE(is_linear_weight("token_embd.weight", 2));
  EXPECT_FALSE(is_linear_weight("output.weight", 2));
}

// A one-layer model with F32 tensors; `weight(i)` gives blk.0.attn_q.weight's values.
template <typename Fn>
void write_model(const std::string& path, uint64_t n_embd, uint64_t n_vocab, Fn weight) {
  Writer w;
  w.add_kv("general.architecture", Value::string("bitnet-b1.58"));
  w.add_kv("general.file_type", Value::u32(0));
  w.add_kv("bitnet-b1.58.embedding_length", Value::u32(static_cast<uint32_t>(n_embd)));
  w.add_tensor("token_embd.weight", TensorType::F32, {n_embd, n_vocab});
  w.add_tensor("blk.0.attn_norm.weight", TensorType::F32, {n_embd});
  w.add_tensor("blk.0.attn_q.weight", TensorType::F32, {n_embd, n_embd});
  w.write(path, [&](std::size_t index, const TensorInfo& info, Writer::Sink& sink) {
    std::vector<float> v(info.n_elements());
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (index == 0) v[i] = std::sin(static_cast<float>(i) * 0.37f) * 0.05f;
      if (index == 1) v[i] = 1.0f;
      if (index == 2) v[i] = weight(i);
    }
    sink.write({reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4});
  });
}

float smooth_weight(std::size_t i) {
  return std::sin(static_cast<float>(i) * 1.3f) * 0.02f;
}

TEST(Quantize, RefusesNonTernaryWeightsWithoutTernarize) {
  TempDir dir;
  write_model(dir.file("in.gguf"), 256, 8, smooth_weight);
  const File in = File::open(dir.file("in.gguf"));
  try {
    quantize(in, dir.file("out.gguf"), {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_input);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("tensor 'blk.0.attn_q.weight' is not ternary"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--ternarize"), std::string::npos) << msg;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("out.gguf")));
}

TEST(Quantize, TernarizeUsesAbsmean) {
  TempDir dir;
  write_model(dir.file("in.gguf"), 256, 8, smooth_weight);
  const File in = File::open(dir.file("in.gguf"));
  QuantizeOptions options;
  options.ternarize = true;
  const QuantizeSummary s = quantize(in, dir.file("out.gguf"), options);
  EXPECT_EQ(s.n_quantized, 1u);
  EXPECT_EQ(s.n_ternarized, 1u);

  const File out = File::open(dir.file("out.gguf"));
  const TensorInfo* q = out.find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  ASSERT_EQ(q->type, TensorType::I2_S);
  std::vector<int8_t> codes(q->n_elements());
  const float scale = unpack_i2s(out.tensor_data(*q), codes.size(), codes);

  double mean = 0;
  for (std::size_t i = 0; i < codes.size(); ++i)
    mean += std::fabs(smooth_weight(i));
  mean /= static_cast<double>(codes.size());
  EXPECT_NEAR(scale, mean, mean * 1e-5);
  std::size_t mismatches = 0, zeros = 0;
  for (std::size_t i = 0; i < codes.size(); ++i) {
    const double r = smooth_weight(i) / mean;
    const int expected = r > 0.5 ? 1 : (r < -0.5 ? -1 : 0);
    // Values within rounding distance of ±0.5 may go either way.
    if (codes[i] != expected && std::fabs(std::fabs(r) - 0.5) > 1e-4) ++mismatches;
    zeros += codes[i] == 0;
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GT(zeros, codes.size() / 5);
  EXPECT_LT(zeros, codes.size() / 2);
  // Unchanged: norms stay F32, the 256-wide tied head stays F16-eligible (converted to F16).
  EXPECT_EQ(out.find_tensor("blk.0.attn_norm.weight")->type, TensorType::F32);
  EXPECT_EQ(out.find_tensor("token_embd.weight")->type, TensorType::F16);
  EXPECT_EQ(out.get_uint("general.file_type"), 40u);
  EXPECT_EQ(out.metadata().back().key, "general.quantization_version");
  EXPECT_EQ(out.get_uint("general.quantization_version"), 2u);
}

TEST(Quantize, TernaryF32WeightsKeepTheirScale) {
  TempDir dir;
  const auto ternary = [](std::size_t i) { return 0.25f * static_cast<float>(i % 3) - 0.25f; };
  write_model(dir.file("in.gguf"), 128, 4, ternary);
  QuantizeOptions options;
  options.ternarize = true; // already ternary: packed as is, not re-scaled
  const QuantizeSummary s =
      quantize(File::open(dir.file("in.gguf")), dir.file("out.gguf"), options);
  EXPECT_EQ(s.n_ternarized, 0u);
  const File out = File::open(dir.file("out.gguf"));
  const TensorInfo* q = out.find_tensor("blk.0.attn_q.weight");
  std::vector<int8_t> codes(q->n_elements());
  EXPECT_EQ(unpack_i2s(out.tensor_data(*q), codes.size(), codes), 0.25f);
  for (std::size_t i = 0; i < codes.size(); ++i)
    ASSERT_EQ(codes[i], static_cast<int>(i % 3) - 1);
}

TEST(Quantize, TiedHeadBecomesQ8_0WhenWidthIsNotAMultipleOf256) {
  TempDir dir;
  const auto ternary = [](std::size_t i) { return i % 2 ? 0.5f : -0.5f; };
  write_model(dir.file("in.gguf"), 384, 5, ternary);
  const File in = File::open(dir.file("in.gguf"));
  quantize(in, dir.file("out.gguf"), {});
  const File out = File::open(dir.file("out.gguf"));
  const TensorInfo* embd = out.find_tensor("token_embd.weight");
  ASSERT_EQ(embd->type, TensorType::Q8_0);
  const auto q8 = out.tensor_data(*embd);
  std::vector<float> original(embd->n_elements());
  std::memcpy(original.data(), in.tensor_data(*in.find_tensor("token_embd.weight")).data(),
              original.size() * 4);
  for (std::size_t b = 0; b < original.size() / 32; ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i)
      amax = std::max(amax, std::fabs(original[b * 32 + i]));
    uint16_t dh;
    std::memcpy(&dh, q8.data() + b * 34, 2);
    const float d = fp16_to_fp32(dh);
    ASSERT_NEAR(d, amax / 127, amax / 127 * 1e-3) << "block " << b;
    int max_q = 0;
    for (int i = 0; i < 32; ++i) {
      const auto q = static_cast<int8_t>(q8[b * 34 + 2 + i]);
      max_q = std::max(max_q, std::abs(static_cast<int>(q)));
      // q = round(x / d) with the exact d; d itself is then rounded to f16.
      const float tolerance = 0.5f * amax / 127 + std::abs(q) * std::fabs(d - amax / 127) + 1e-7f;
      ASSERT_NEAR(q * d, original[b * 32 + i], tolerance) << "block " << b << " item " << i;
    }
    EXPECT_EQ(max_q, 127);
  }
}

TEST(Quantize, Q8_0ZeroBlockAndSizeChecks) {
  std::vector<float> zeros(32, 0.0f);
  std::vector<uint8_t> out(34, 0xFF);
  quantize_row_q8_0(zeros, out);
  for (uint8_t b : out)
    EXPECT_EQ(b, 0);
  std::vector<uint8_t> small(33);
  EXPECT_THROW(quantize_row_q8_0(zeros, small), Error);
}

TEST(Quantize, RejectsOtherTargetTypes) {
  QuantizeOptions options;
  options.type = TensorType::TQ2_0;
  TempDir dir;
  EXPECT_THROW(quantize(File::open(kModels + "A.gguf"), dir.file("x.gguf"), options), Error);
}

TEST(Quantize, AlreadyI2sFileIsCopied) {
  TempDir dir;
  quantize(File::open(kModels + "A.gguf"), dir.file("again.gguf"), {});
  const std::vector<uint8_t> a = read_bytes(kModels + "A.gguf");
  const std::vector<uint8_t> b = read_bytes(dir.file("again.gguf"));
  // A.gguf already is what quantize writes (zero pads included), so nothing changes.
  EXPECT_TRUE(a == b);
}

} // namespace
} // namespace bitnet::gguf
