// load_config: the four fixture architectures read as the fork reads them, and every
// check that rejects a file which cannot run (bad sizes, missing or mistyped tensors,
// unknown architecture) with the right error kind.
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gguf/gguf.hpp"
#include "model/config.hpp"
#include "reference.hpp"
#include "support/temp_dir.hpp"

namespace bitnet::test {
namespace {

using gguf::TensorType;
using gguf::Value;

TEST(Config, FixtureArchitectures) {
  const auto a = model::load_config(gguf::File::open(data_path("reference/models/A.gguf")));
  EXPECT_EQ(a.arch, model::Arch::bitnet_b158);
  EXPECT_EQ(a.n_embd, 512);
  EXPECT_EQ(a.n_head, 4);
  EXPECT_EQ(a.n_head_kv, 1);
  EXPECT_EQ(a.head_dim, 128);
  EXPECT_EQ(a.n_ff, 1408);
  EXPECT_EQ(a.n_layer, 3);
  EXPECT_EQ(a.n_vocab, 678);
  EXPECT_FLOAT_EQ(a.rope_base, 500000.0f);
  EXPECT_EQ(a.ffn_act, model::FfnAct::relu_sqr);
  EXPECT_TRUE(a.rope_neox && a.has_sub_norms && a.tied_output);
  EXPECT_EQ(a.embd_type, TensorType::F16);

  const auto b = model::load_config(gguf::File::open(data_path("reference/models/B.gguf")));
  EXPECT_EQ(b.arch, model::Arch::bitnet_25);
  EXPECT_EQ(b.embd_type, TensorType::Q8_0);
  EXPECT_EQ(b.output_type, TensorType::Q8_0);
  EXPECT_FLOAT_EQ(b.rope_base, 10000.0f);

  const auto c = model::load_config(gguf::File::open(data_path("reference/models/C.gguf")));
  EXPECT_EQ(c.arch, model::Arch::bitnet);
  EXPECT_EQ(c.ffn_act, model::FfnAct::silu);
  EXPECT_TRUE(c.has_sub_norms && c.rope_neox && c.tied_output);

  const auto d = model::load_config(gguf::File::open(data_path("reference/models/D.gguf")));
  EXPECT_EQ(d.arch, model::Arch::llama);
  EXPECT_EQ(d.ffn_act, model::FfnAct::silu);
  EXPECT_FALSE(d.has_sub_norms);
  EXPECT_FALSE(d.rope_neox);
  EXPECT_FALSE(d.tied_output);
  EXPECT_EQ(d.head_dim, 64);
}

// A minimal bitnet-b1.58 file (n_embd 128, one layer, n_ff 128, 8 tokens) with zeroed
// tensor data, and the mutations each check must reject.
struct Spec {
  std::string arch = "bitnet-b1.58";
  std::map<std::string, Value> kv_override; // key without the arch prefix
  std::map<std::string, TensorType> type_override;
  std::map<std::string, std::vector<uint64_t>> shape_override;
  std::optional<std::string> drop_tensor;
  bool extra_layer = false; // a second layer of tensors (blk.1.*) beside block_count 1
  std::optional<std::string> extra_tensor; // one more F32 [128] tensor of this name
};

std::string write_model(const TempDir& dir, const Spec& spec) {
  gguf::Writer w;
  w.add_kv("general.architecture", Value::string(spec.arch));
  std::map<std::string, Value> kv = {{"embedding_length", Value::u32(128)},
                                     {"block_count", Value::u32(1)},
                                     {"feed_forward_length", Value::u32(128)},
                                     {"attention.head_count", Value::u32(1)},
                                     {"attention.head_count_kv", Value::u32(1)},
                                     {"context_length", Value::u32(64)},
                                     {"vocab_size", Value::u32(8)}};
  for (const auto& [k, v] : spec.kv_override)
    kv.insert_or_assign(k, v);
  for (const auto& [k, v] : kv)
    w.add_kv(spec.arch + "." + k, v);
  const std::vector<std::pair<std::string, std::pair<TensorType, std::vector<uint64_t>>>> tensors =
      {{"token_embd.weight", {TensorType::F16, {128, 8}}},
       {"output_norm.weight", {TensorType::F32, {128}}},
       {"blk.0.attn_norm.weight", {TensorType::F32, {128}}},
       {"blk.0.attn_sub_norm.weight", {TensorType::F32, {128}}},
       {"blk.0.ffn_norm.weight", {TensorType::F32, {128}}},
       {"blk.0.ffn_sub_norm.weight", {TensorType::F32, {128}}},
       {"blk.0.attn_q.weight", {TensorType::I2_S, {128, 128}}},
       {"blk.0.attn_k.weight", {TensorType::I2_S, {128, 128}}},
       {"blk.0.attn_v.weight", {TensorType::I2_S, {128, 128}}},
       {"blk.0.attn_output.weight", {TensorType::I2_S, {128, 128}}},
       {"blk.0.ffn_gate.weight", {TensorType::I2_S, {128, 128}}},
       {"blk.0.ffn_up.weight", {TensorType::I2_S, {128, 128}}},
       {"blk.0.ffn_down.weight", {TensorType::I2_S, {128, 128}}}};
  for (const auto& [name, t] : tensors) {
    if (spec.drop_tensor == name) continue;
    const auto type = spec.type_override.contains(name) ? spec.type_override.at(name) : t.first;
    const auto shape = spec.shape_override.contains(name) ? spec.shape_override.at(name) : t.second;
    w.add_tensor(name, type, shape);
    if (spec.extra_layer && name.starts_with("blk.0."))
      w.add_tensor("blk.1." + name.substr(6), type, shape);
  }
  if (spec.extra_tensor) w.add_tensor(*spec.extra_tensor, TensorType::F32, {128});
  const std::string path = dir.file("m.gguf");
  w.write(path, [](std::size_t, const gguf::TensorInfo& info, gguf::Writer::Sink& sink) {
    const std::vector<uint8_t> zeros(info.nbytes, 0);
    sink.write(zeros);
  });
  return path;
}

std::optional<ErrorKind> config_error(const Spec& spec) {
  TempDir dir;
  try {
    model::load_config(gguf::File::open(write_model(dir, spec)));
  } catch (const Error& e) {
    return e.kind();
  }
  return std::nullopt;
}

Spec arch(std::string a) {
  Spec s;
  s.arch = std::move(a);
  return s;
}
Spec kv(std::map<std::string, Value> m) {
  Spec s;
  s.kv_override = std::move(m);
  return s;
}
Spec type(const std::string& tensor, TensorType t) {
  Spec s;
  s.type_override[tensor] = t;
  return s;
}
Spec shape(const std::string& tensor, std::vector<uint64_t> ne) {
  Spec s;
  s.shape_override[tensor] = std::move(ne);
  return s;
}
Spec drop(const std::string& tensor) {
  Spec s;
  s.drop_tensor = tensor;
  return s;
}

TEST(Config, MinimalModelIsAccepted) {
  EXPECT_EQ(config_error({}), std::nullopt);
}

TEST(Config, RejectsBadSizes) {
  EXPECT_EQ(config_error(kv({{"block_count", Value::u32(1000000)}})), ErrorKind::format);
  EXPECT_EQ(config_error(kv({{"attention.head_count", Value::u32(0)}})), ErrorKind::format);
  EXPECT_EQ(config_error(kv({{"attention.head_count", Value::u32(3)}})),
            ErrorKind::format); // 3 heads do not divide 128
  EXPECT_EQ(config_error(kv({{"attention.head_count", Value::u32(2)},
                             {"attention.head_count_kv", Value::u32(3)}})),
            ErrorKind::format); // kv heads do not divide heads
  EXPECT_EQ(config_error(kv({{"embedding_length", Value::u32(0)}})), ErrorKind::format);
  EXPECT_EQ(config_error(kv({{"context_length", Value::u64(uint64_t{1} << 40)}})),
            ErrorKind::format);
  EXPECT_EQ(config_error(kv({{"vocab_size", Value::u32(9)}})), ErrorKind::format);
}

TEST(Config, RejectsMissingOrMistypedTensors) {
  EXPECT_EQ(config_error(drop("blk.0.ffn_down.weight")), ErrorKind::format);
  EXPECT_EQ(config_error(drop("blk.0.attn_sub_norm.weight")), ErrorKind::format);
  EXPECT_EQ(config_error(type("blk.0.attn_q.weight", TensorType::F16)), ErrorKind::unsupported);
  EXPECT_EQ(config_error(type("token_embd.weight", TensorType::F32)), ErrorKind::unsupported);
  EXPECT_EQ(config_error(shape("blk.0.attn_k.weight", {128, 256})), ErrorKind::format);
}

// Regression: block_count 5 with 6 layers of tensors ran 5 layers.
TEST(Config, LayerTensorsMustMatchBlockCount) {
  Spec extra;
  extra.extra_layer = true;
  EXPECT_EQ(config_error(extra), ErrorKind::format); // blk.1.* with block_count 1
  extra.kv_override.insert_or_assign("block_count", Value::u32(2));
  EXPECT_EQ(config_error(extra), std::nullopt);
  // A per-layer name without a layer index is not a tensor of any layer either.
  Spec odd;
  odd.extra_tensor = "blk.x.attn_norm.weight";
  EXPECT_EQ(config_error(odd), ErrorKind::format);
  odd.extra_tensor = "blk.-1.attn_norm.weight";
  EXPECT_EQ(config_error(odd), ErrorKind::format);
  odd.extra_tensor = "rope_extra.weight"; // not per-layer: ignored, as the fork does
  EXPECT_EQ(config_error(odd), std::nullopt);
}

// Regression: rope.freq_base = inf ran. The base and the epsilon must be finite and positive.
TEST(Config, RopeBaseAndEpsilonMustBeFinitePositive) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  constexpr float nan = std::numeric_limits<float>::quiet_NaN();
  for (float bad : {inf, -inf, nan, 0.0f, -1.0f}) {
    EXPECT_EQ(config_error(kv({{"rope.freq_base", Value::f32(bad)}})), ErrorKind::format) << bad;
    EXPECT_EQ(config_error(kv({{"attention.layer_norm_rms_epsilon", Value::f32(bad)}})),
              ErrorKind::format)
        << bad;
  }
  // A float64 that overflows float is infinite too.
  EXPECT_EQ(config_error(kv({{"rope.freq_base", Value::f64(1e300)}})), ErrorKind::format);
  EXPECT_EQ(config_error(kv({{"rope.freq_base", Value::f32(500000.0f)}})), std::nullopt);
}

TEST(Config, ArchitectureSelectsTheGraph) {
  EXPECT_EQ(config_error(arch("gpt2")), ErrorKind::unsupported);
  EXPECT_EQ(config_error(arch("bitnet-25")), std::nullopt);
  EXPECT_EQ(config_error(arch("bitnet")), std::nullopt);
  // llama has no sub-norms: extra tensors are ignored, so the same file is accepted.
  EXPECT_EQ(config_error(arch("llama")), std::nullopt);
}

} // namespace
} // namespace bitnet::test
