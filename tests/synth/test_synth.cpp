// Synthetic models: exact keys, tensors and types of the 2B-4T GGUF, determinism, values.
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bitnet/error.hpp"
#include "gguf/gguf.hpp"
#include "gguf/i2s.hpp"
#include "support/error_kind.hpp"
#include "support/temp_dir.hpp"
#include "synth/synth.hpp"
#include "util/fp16.hpp"

namespace bitnet::synth {
namespace {

using gguf::TensorType;
using test::error_kind;

const std::string kLlama3Json = std::string(BITNET_TEST_DATA_DIR) + "/tokenizer/tokenizer.json";

// The chat template in [BN] utils/convert-ms-to-gguf-bitnet.py (docs/gguf-format.md §6.4), with the
// backslash-n pairs of the Jinja source kept as two characters.
const std::string kConverterTemplate =
    "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}{% if "
    "message['role'] == 'user' %}{{ 'Human: ' + message['content'] + "
    "'\\n\\nBITNETAssistant: ' + eos_token }}{% elif message['role'] == 'assistant' %}{{ "
    "message['content'] + eos_token }}{% endif %}{% endfor %}";

// The 24 keys of the 2B-4T file in its order (docs/gguf-format.md §4, §6; the bitnet-25 upload's
// dump).
std::vector<std::string> expected_keys(const std::string& a, bool with_pre) {
  std::vector<std::string> keys = {
      "general.architecture",
      "general.name",
      a + ".vocab_size",
      a + ".context_length",
      a + ".embedding_length",
      a + ".block_count",
      a + ".feed_forward_length",
      a + ".rope.dimension_count",
      a + ".attention.head_count",
      a + ".attention.head_count_kv",
      "tokenizer.ggml.add_bos_token",
      a + ".attention.layer_norm_rms_epsilon",
      a + ".rope.freq_base",
      "general.file_type",
      "tokenizer.ggml.model",
      "tokenizer.ggml.tokens",
      "tokenizer.ggml.scores",
      "tokenizer.ggml.token_type",
      "tokenizer.ggml.merges",
      "tokenizer.ggml.bos_token_id",
      "tokenizer.ggml.eos_token_id",
      "tokenizer.ggml.padding_token_id",
      "tokenizer.chat_template",
      "general.quantization_version",
  };
  if (with_pre) keys.insert(keys.begin() + 15, "tokenizer.ggml.pre");
  return keys;
}

struct Expected {
  std::string name;
  TensorType type;
  std::vector<uint64_t> ne;
};

// Tensors of a BitNet b1.58 file (docs/gguf-format.md §4 table), in the plan's order.
std::vector<Expected> expected_tensors(uint64_t embd, uint64_t layers, uint64_t kv, uint64_t ff,
                                       uint64_t vocab) {
  std::vector<Expected> t = {{"token_embd.weight", TensorType::F16, {embd, vocab}}};
  for (uint64_t i = 0; i < layers; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    t.push_back({p + "attn_norm.weight", TensorType::F32, {embd}});
    t.push_back({p + "attn_q.weight", TensorType::I2_S, {embd, embd}});
    t.push_back({p + "attn_k.weight", TensorType::I2_S, {embd, kv}});
    t.push_back({p + "attn_v.weight", TensorType::I2_S, {embd, kv}});
    t.push_back({p + "attn_sub_norm.weight", TensorType::F32, {embd}});
    t.push_back({p + "attn_output.weight", TensorType::I2_S, {embd, embd}});
    t.push_back({p + "ffn_norm.weight", TensorType::F32, {embd}});
    t.push_back({p + "ffn_gate.weight", TensorType::I2_S, {embd, ff}});
    t.push_back({p + "ffn_up.weight", TensorType::I2_S, {embd, ff}});
    t.push_back({p + "ffn_sub_norm.weight", TensorType::F32, {ff}});
    t.push_back({p + "ffn_down.weight", TensorType::I2_S, {ff, embd}});
  }
  t.push_back({"output_norm.weight", TensorType::F32, {embd}});
  return t;
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

Options tiny(uint64_t seed = 1) {
  Options o;
  o.preset = "tiny";
  o.seed = seed;
  return o;
}

TEST(Synth, TinyFileHasTheRealKeysTensorsAndTypes) {
  test::TempDir dir;
  const std::string path = dir.file("tiny.gguf");
  const Summary summary = write_model(path, tiny());
  const gguf::File f = gguf::File::open(path);

  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.file_size(), summary.file_size);
  std::vector<std::string> keys;
  for (const auto& kv : f.metadata())
    keys.push_back(kv.key);
  EXPECT_EQ(keys, expected_keys("bitnet-b1.58", false));

  const std::string a = "bitnet-b1.58";
  EXPECT_EQ(f.architecture(), a);
  EXPECT_EQ(f.get_uint(a + ".embedding_length"), 128u);
  EXPECT_EQ(f.get_uint(a + ".block_count"), 2u);
  EXPECT_EQ(f.get_uint(a + ".feed_forward_length"), 256u);
  EXPECT_EQ(f.get_uint(a + ".attention.head_count"), 2u);
  EXPECT_EQ(f.get_uint(a + ".attention.head_count_kv"), 1u);
  EXPECT_EQ(f.get_uint(a + ".rope.dimension_count"), 64u);
  EXPECT_EQ(f.get_uint(a + ".context_length"), 4096u);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get_float(a + ".attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(f.get_float(a + ".rope.freq_base"), 500000.0);
  EXPECT_EQ(f.get_uint("general.file_type"), 40u);
  EXPECT_EQ(f.get_uint("general.quantization_version"), 2u);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.find("tokenizer.ggml.pre"), nullptr);
  EXPECT_EQ(f.find_bool("tokenizer.ggml.add_bos_token"), true);
  EXPECT_EQ(f.get_string("tokenizer.chat_template"), kConverterTemplate);

  const uint64_t n_vocab = f.find("tokenizer.ggml.tokens")->size();
  EXPECT_EQ(n_vocab, summary.n_vocab);
  EXPECT_EQ(f.get_uint(a + ".vocab_size"), n_vocab);
  EXPECT_EQ(f.find("tokenizer.ggml.scores")->size(), n_vocab);
  EXPECT_EQ(f.find("tokenizer.ggml.token_type")->size(), n_vocab);
  EXPECT_EQ(f.find("tokenizer.ggml.scores")->elem_type(), gguf::ValueType::float32);
  EXPECT_EQ(f.find("tokenizer.ggml.token_type")->elem_type(), gguf::ValueType::int32);
  EXPECT_GT(f.find("tokenizer.ggml.merges")->size(), 100u);
  const uint64_t bos = f.get_uint("tokenizer.ggml.bos_token_id");
  const uint64_t eos = f.get_uint("tokenizer.ggml.eos_token_id");
  ASSERT_LT(bos, n_vocab);
  ASSERT_LT(eos, n_vocab);
  EXPECT_EQ(f.find("tokenizer.ggml.tokens")->string_at(bos), "<|begin_of_text|>");
  EXPECT_EQ(f.find("tokenizer.ggml.tokens")->string_at(eos), "<|end_of_text|>");
  EXPECT_EQ(f.get_uint("tokenizer.ggml.padding_token_id"), eos);

  const std::vector<Expected> want = expected_tensors(128, 2, 64, 256, n_vocab);
  ASSERT_EQ(f.tensors().size(), want.size());
  EXPECT_EQ(summary.n_tensors, want.size());
  uint64_t n_params = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const gguf::TensorInfo& t = f.tensors()[i];
    EXPECT_EQ(t.name, want[i].name);
    EXPECT_EQ(t.type, want[i].type) << t.name;
    EXPECT_EQ(t.ne, want[i].ne) << t.name;
    n_params += t.n_elements();
  }
  EXPECT_EQ(summary.n_params, n_params);
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr) << "the head is tied to token_embd";
}

TEST(Synth, SameSeedSameBytesOtherSeedOtherBytes) {
  test::TempDir dir;
  write_model(dir.file("a.gguf"), tiny(7));
  write_model(dir.file("b.gguf"), tiny(7));
  write_model(dir.file("c.gguf"), tiny(8));
  const auto a = read_bytes(dir.file("a.gguf"));
  ASSERT_GT(a.size(), 0u);
  EXPECT_EQ(a, read_bytes(dir.file("b.gguf")));

  const gguf::File fa = gguf::File::open(dir.file("a.gguf"));
  const gguf::File fc = gguf::File::open(dir.file("c.gguf"));
  ASSERT_EQ(fa.tensors().size(), fc.tensors().size());
  for (std::size_t i = 0; i < fa.tensors().size(); ++i) {
    const auto da = fa.tensor_data(fa.tensors()[i]);
    const auto dc = fc.tensor_data(fc.tensors()[i]);
    ASSERT_EQ(da.size(), dc.size());
    EXPECT_NE(std::memcmp(da.data(), dc.data(), da.size()), 0) << fa.tensors()[i].name;
  }
}

TEST(Synth, TensorsAreIndependentStreams) {
  // Two tensors of one shape must not hold the same values (each draws its own stream).
  test::TempDir dir;
  write_model(dir.file("m.gguf"), tiny());
  const gguf::File f = gguf::File::open(dir.file("m.gguf"));
  const auto q0 = f.tensor_data(*f.find_tensor("blk.0.attn_q.weight"));
  const auto q1 = f.tensor_data(*f.find_tensor("blk.1.attn_q.weight"));
  const auto o0 = f.tensor_data(*f.find_tensor("blk.0.attn_output.weight"));
  ASSERT_EQ(q0.size(), q1.size());
  EXPECT_NE(std::memcmp(q0.data(), q1.data(), q0.size() - 32), 0);
  EXPECT_NE(std::memcmp(q0.data(), o0.data(), q0.size() - 32), 0);
}

TEST(Synth, ValuesHaveTheIntendedDistributions) {
  test::TempDir dir;
  write_model(dir.file("m.gguf"), tiny(3));
  const gguf::File f = gguf::File::open(dir.file("m.gguf"));
  for (const gguf::TensorInfo& t : f.tensors()) {
    const auto data = f.tensor_data(t);
    const uint64_t n = t.n_elements();
    if (t.type == TensorType::I2_S) {
      ASSERT_EQ(data.size(), n / 4 + 32) << t.name;
      std::vector<int8_t> w(n);
      const float scale = gguf::unpack_i2s(data, n, w);
      std::map<int, uint64_t> counts;
      for (int8_t v : w)
        ++counts[v];
      ASSERT_EQ(counts.size(), 3u) << t.name;
      for (const auto& [value, count] : counts) {
        // n ≥ 8192: a third ± 7 standard deviations.
        EXPECT_NEAR(static_cast<double>(count) / n, 1.0 / 3, 0.04) << t.name << " value " << value;
      }
      EXPECT_TRUE(std::isfinite(scale) && scale > 0.0f && scale < 1.0f) << t.name << " " << scale;
      for (std::size_t i = n / 4 + 4; i < data.size(); ++i) {
        EXPECT_EQ(data[i], 0) << t.name << ": padding after the scale is written as zeros";
      }
    } else if (t.type == TensorType::F32) {
      ASSERT_EQ(data.size(), 4 * n);
      double lo = 2, hi = 0;
      for (uint64_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, data.data() + 4 * i, 4);
        lo = std::min<double>(lo, v);
        hi = std::max<double>(hi, v);
      }
      EXPECT_GT(lo, 0.9) << t.name << ": norm weights near 1";
      EXPECT_LT(hi, 1.1) << t.name;
      EXPECT_LT(lo, hi) << t.name << ": not all equal";
    } else {
      ASSERT_EQ(t.type, TensorType::F16);
      ASSERT_EQ(data.size(), 2 * n);
      double sum2 = 0, max_abs = 0;
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, data.data() + 2 * i, 2);
        const double v = fp16_to_fp32(h);
        ASSERT_TRUE(std::isfinite(v));
        sum2 += v * v;
        max_abs = std::max(max_abs, std::abs(v));
      }
      EXPECT_NEAR(std::sqrt(sum2 / n), 0.05, 0.005) << "embedding RMS";
      EXPECT_LT(max_abs, 0.1);
    }
  }
}

TEST(Synth, ProgressCoversAllTensorData) {
  test::TempDir dir;
  uint64_t last = 0, total_seen = 0, calls = 0;
  bool monotonic = true;
  write_model(dir.file("m.gguf"), tiny(), [&](uint64_t done, uint64_t total) {
    monotonic = monotonic && done > last && done <= total;
    last = done;
    total_seen = total;
    ++calls;
  });
  const gguf::File f = gguf::File::open(dir.file("m.gguf"));
  uint64_t bytes = 0;
  for (const auto& t : f.tensors())
    bytes += t.nbytes;
  EXPECT_TRUE(monotonic);
  EXPECT_EQ(total_seen, bytes);
  EXPECT_EQ(last, bytes);
  EXPECT_GE(calls, f.tensors().size());
}

TEST(Synth, ArchAndPreOptions) {
  test::TempDir dir;
  Options o = tiny();
  o.arch = "bitnet-25";
  o.pre = "llama-bpe";
  write_model(dir.file("m.gguf"), o);
  const gguf::File f = gguf::File::open(dir.file("m.gguf"));
  std::vector<std::string> keys;
  for (const auto& kv : f.metadata())
    keys.push_back(kv.key);
  EXPECT_EQ(keys, expected_keys("bitnet-25", true));
  EXPECT_EQ(f.architecture(), "bitnet-25");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "llama-bpe");
  EXPECT_EQ(f.get_uint("bitnet-25.block_count"), 2u);
}

TEST(Synth, BadOptionsAreInvalidArguments) {
  test::TempDir dir;
  Options o = tiny();
  o.arch = "llama";
  EXPECT_EQ(error_kind([&] { write_model(dir.file("m.gguf"), o); }), ErrorKind::invalid_argument);
  o = tiny();
  o.preset = "huge";
  EXPECT_EQ(error_kind([&] { write_model(dir.file("m.gguf"), o); }), ErrorKind::invalid_argument);
  o = tiny();
  o.tokenizer_json = dir.file("missing.json");
  EXPECT_EQ(error_kind([&] { write_model(dir.file("m.gguf"), o); }), ErrorKind::io);
  EXPECT_FALSE(std::filesystem::exists(dir.file("m.gguf")));
  EXPECT_EQ(error_kind([&] { write_model(dir.file("no/such/dir/m.gguf"), tiny()); }),
            ErrorKind::io);
}

TEST(Synth, PresetShapes) {
  const Shape t = preset_shape("tiny");
  EXPECT_EQ(t.n_embd, 128u);
  EXPECT_EQ(t.n_vocab, 0u);
  const Shape s = preset_shape("small");
  EXPECT_EQ(s.n_embd, 256u);
  EXPECT_EQ(s.n_layer, 4u);
  EXPECT_EQ(preset_names(), (std::vector<std::string>{"tiny", "small", "2b4t"}));
}

TEST(Synth2b4t, TensorPlanIsTheRealFile) {
  const Shape shape = preset_shape("2b4t");
  ASSERT_EQ(shape.n_vocab, 128256u);
  const std::vector<TensorSpec> plan = tensor_plan(shape, shape.n_vocab);
  const std::vector<Expected> want = expected_tensors(2560, 30, 640, 6912, 128256);
  ASSERT_EQ(plan.size(), 332u);
  ASSERT_EQ(want.size(), 332u);
  std::map<TensorType, int> by_type;
  uint64_t i2s_layer0 = 0, data_bytes = 0;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].name, want[i].name);
    EXPECT_EQ(plan[i].type, want[i].type) << plan[i].name;
    EXPECT_EQ(plan[i].ne, want[i].ne) << plan[i].name;
    ++by_type[plan[i].type];
    uint64_t n = 1;
    for (uint64_t d : plan[i].ne)
      n *= d;
    const uint64_t nbytes = gguf::tensor_nbytes(plan[i].type, n);
    data_bytes += (nbytes + 31) / 32 * 32;
    if (plan[i].type == TensorType::I2_S && plan[i].name.starts_with("blk.0."))
      i2s_layer0 += nbytes;
  }
  // Loader log of the real file: f32 121, f16 1, i2_s 210; 17,367,264 I2_S bytes per layer.
  EXPECT_EQ(by_type[TensorType::F32], 121);
  EXPECT_EQ(by_type[TensorType::F16], 1);
  EXPECT_EQ(by_type[TensorType::I2_S], 210);
  EXPECT_EQ(i2s_layer0, 17367264u);
  // ≈1.19 GB of tensor data: the 656 MB embedding, 30 layers of I2_S and the norms.
  EXPECT_EQ(data_bytes, 2560ull * 128256 * 2 + 30ull * 17367264 + 4ull * (2560 * 91 + 6912 * 30));
}

TEST(Synth2b4t, MetadataWithTheLlama3Tokenizer) {
  Options o;
  o.preset = "2b4t";
  o.tokenizer_json = kLlama3Json;
  const Shape shape = preset_shape(o.preset);
  const Vocab vocab = resolve_vocab(shape, o.tokenizer_json);
  const std::vector<gguf::KeyValue> kv = metadata(o, shape, vocab);
  ASSERT_EQ(kv.size(), 24u);
  std::vector<std::string> keys;
  std::map<std::string, const gguf::Value*> by_key;
  for (const auto& k : kv) {
    keys.push_back(k.key);
    by_key[k.key] = &k.value;
  }
  EXPECT_EQ(keys, expected_keys("bitnet-b1.58", false));
  EXPECT_EQ(by_key["bitnet-b1.58.vocab_size"]->as_uint(), 128256u);
  EXPECT_EQ(by_key["bitnet-b1.58.embedding_length"]->as_uint(), 2560u);
  EXPECT_EQ(by_key["bitnet-b1.58.block_count"]->as_uint(), 30u);
  EXPECT_EQ(by_key["bitnet-b1.58.feed_forward_length"]->as_uint(), 6912u);
  EXPECT_EQ(by_key["bitnet-b1.58.rope.dimension_count"]->as_uint(), 128u);
  EXPECT_EQ(by_key["bitnet-b1.58.attention.head_count"]->as_uint(), 20u);
  EXPECT_EQ(by_key["bitnet-b1.58.attention.head_count_kv"]->as_uint(), 5u);
  EXPECT_EQ(by_key["tokenizer.ggml.tokens"]->size(), 128256u);
  EXPECT_EQ(by_key["tokenizer.ggml.merges"]->size(), 280147u);
  EXPECT_EQ(by_key["tokenizer.ggml.bos_token_id"]->as_uint(), 128000u);
  EXPECT_EQ(by_key["tokenizer.ggml.eos_token_id"]->as_uint(), 128001u);
  EXPECT_EQ(by_key["tokenizer.ggml.padding_token_id"]->as_uint(), 128001u);
  EXPECT_EQ(by_key["tokenizer.ggml.token_type"]->at(128009).as_int(), 3);
  EXPECT_EQ(by_key["tokenizer.ggml.token_type"]->at(1000).as_int(), 1);
  // gguf::Value stores f32 as double: compare the value read back as float.
  EXPECT_EQ(static_cast<float>(by_key["tokenizer.ggml.scores"]->at(128000).as_float()),
            -1000.0f);
}

TEST(Synth2b4t, BuiltinVocabIsPaddedToTheRealSize) {
  const Shape shape = preset_shape("2b4t");
  const Vocab v = resolve_vocab(shape, std::nullopt);
  ASSERT_EQ(v.size(), 128256u);
  EXPECT_EQ(v.tokens[v.bos], "<|begin_of_text|>");
  EXPECT_EQ(v.tokens.back(), "[PAD128255]");
}

TEST(Synth2b4t, TokenizerOfAnotherSizeIsRefused) {
  test::TempDir dir;
  const std::string path = dir.file("tokenizer.json");
  std::ofstream(path) << R"({"added_tokens": [
      {"id": 2, "content": "<|begin_of_text|>", "special": true},
      {"id": 3, "content": "<|end_of_text|>", "special": true}],
      "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}})";
  EXPECT_EQ(error_kind([&] { resolve_vocab(preset_shape("2b4t"), path); }),
            ErrorKind::invalid_argument);
  EXPECT_EQ(resolve_vocab(preset_shape("tiny"), path).size(), 4u);
}

} // namespace
} // namespace bitnet::synth
