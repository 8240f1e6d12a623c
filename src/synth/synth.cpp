// Synthetic 2B-4T-format models: plan, metadata and streaming generation.
#include "synth/synth.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <span>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bitnet/error.hpp"
#include "gguf/i2s.hpp"
#include "synth/random.hpp"
#include "util/fp16.hpp"

namespace bitnet::synth {

namespace {

// Value scales. A linear weight's scale makes a unit-RMS input give outputs of RMS ≈ gain
// (each output sums about 2/3·n_in terms of ±1). An input gain of 2 spreads the attention
// and FFN activations enough that greedy decoding wanders instead of repeating one token
// (the setting the reference models in tests/data/reference were made with).
constexpr double kInGain = 2.0;  // attn_q/k/v, ffn_gate/up
constexpr double kOutGain = 1.0; // attn_output, ffn_down
constexpr float kEmbdStd = 0.05f;
constexpr float kNormNoise = 0.02f; // norm weights are 1 ± this (standard deviation)
// Uniform on [-a, a) has standard deviation a/√3.
constexpr float kSqrt3 = 1.7320508f;
// Elements of token_embd generated per chunk (4 MiB of F16): bounds memory for the 2B-4T
// embedding (656 MB).
constexpr std::size_t kEmbdChunk = std::size_t{1} << 21;

constexpr uint32_t kFileTypeI2S = 40;        // LLAMA_FTYPE_MOSTLY_I2_S (docs/gguf-format.md §2)
constexpr uint32_t kQuantizationVersion = 2; // as llama-quantize writes it

struct Preset {
  std::string_view name;
  Shape shape;
};

// tiny and small follow ../shared/tools/synth_bitnet_gguf.py; 2b4t is docs/gguf-format.md §4.
constexpr Preset kPresets[] = {
    {"tiny", {128, 2, 2, 1, 256, 4096, 0}},
    {"small", {256, 4, 4, 2, 512, 4096, 0}},
    {"2b4t", {2560, 30, 20, 5, 6912, 4096, 128256}},
};

// The template of [BN] utils/convert-ms-to-gguf-bitnet.py write_all, byte for byte: the
// "\n\n" inside it are backslash escapes that the Jinja string literal turns into newlines.
constexpr std::string_view kBitnetChatTemplate =
    R"({% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %})"
    R"({% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + '\n\nBITNETAssistant: ' + eos_token }})"
    R"({% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %})";

void check_arch(const std::string& arch) {
  if (arch != "bitnet-b1.58" && arch != "bitnet-25") {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("--arch '{}': expected bitnet-b1.58 or bitnet-25", arch));
  }
}

float f16_exact(double x) {
  return fp16_to_fp32(fp32_to_fp16(static_cast<float>(x)));
}

// Writes one tensor's bytes; buffers are reused from tensor to tensor.
class TensorWriter {
public:
  TensorWriter(uint64_t seed, uint64_t bytes_total, const Progress& progress)
      : seed_(seed), bytes_total_(bytes_total), progress_(progress) {}

  void write(std::size_t index, const TensorSpec& spec, const gguf::TensorInfo& info,
             gguf::Writer::Sink& sink) {
    Rng rng(seed_, index);
    const uint64_t n = info.n_elements();
    switch (spec.role) {
    case TensorRole::embedding: {
      const float half_width = kEmbdStd * kSqrt3;
      for (uint64_t done = 0; done < n;) {
        const std::size_t count =
            static_cast<std::size_t>(std::min<uint64_t>(kEmbdChunk, n - done));
        half_.resize(count);
        for (uint16_t& h : half_)
          h = fp32_to_fp16(half_width * rng.uniform_pm1());
        emit(sink, std::as_bytes(std::span(half_)));
        done += count;
      }
      break;
    }
    case TensorRole::norm: {
      const float half_width = kNormNoise * kSqrt3;
      floats_.resize(static_cast<std::size_t>(n));
      for (float& f : floats_) {
        // Two statements, so no compiler fuses them into an FMA with other rounding.
        const float noise = half_width * rng.uniform_pm1();
        f = 1.0f + noise;
      }
      emit(sink, std::as_bytes(std::span(floats_)));
      break;
    }
    case TensorRole::linear_in:
    case TensorRole::linear_out: {
      const double gain = spec.role == TensorRole::linear_in ? kInGain : kOutGain;
      // Rounded to an f16 value so F16/F32 copies of the weights hold the same numbers.
      const float scale = f16_exact(gain / std::sqrt(2.0 / 3.0 * static_cast<double>(spec.ne[0])));
      ternary_.resize(static_cast<std::size_t>(n));
      for (std::size_t i = 0; i < ternary_.size(); i += 4)
        rng.ternary4(&ternary_[i]);
      packed_.assign(static_cast<std::size_t>(info.nbytes), 0);
      gguf::pack_i2s(ternary_, scale, packed_);
      emit(sink, std::as_bytes(std::span(packed_)));
      break;
    }
    }
  }

private:
  void emit(gguf::Writer::Sink& sink, std::span<const std::byte> bytes) {
    sink.write({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
    bytes_done_ += bytes.size();
    if (progress_) progress_(bytes_done_, bytes_total_);
  }

  uint64_t seed_;
  uint64_t bytes_total_;
  uint64_t bytes_done_ = 0;
  const Progress& progress_;
  std::vector<uint16_t> half_;
  std::vector<float> floats_;
  std::vector<int8_t> ternary_;
  std::vector<uint8_t> packed_;
};

} // namespace

Shape preset_shape(std::string_view preset) {
  for (const Preset& p : kPresets) {
    if (p.name == preset) return p.shape;
  }
  throw Error(ErrorKind::invalid_argument, fmt::format("unknown preset '{}' (expected {})", preset,
                                                       fmt::join(preset_names(), ", ")));
}

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const Preset& p : kPresets)
      names.emplace_back(p.name);
    return names;
  }();
  return kNames;
}

std::vector<TensorSpec> tensor_plan(const Shape& shape, uint64_t n_vocab) {
  using gguf::TensorType;
  const uint64_t embd = shape.n_embd;
  const uint64_t ff = shape.n_ff;
  const uint64_t kv = embd / shape.n_head * shape.n_head_kv; // K/V width: head_dim × n_head_kv
  std::vector<TensorSpec> plan;
  plan.push_back({"token_embd.weight", TensorType::F16, {embd, n_vocab}, TensorRole::embedding});
  for (uint32_t layer = 0; layer < shape.n_layer; ++layer) {
    const auto name = [layer](std::string_view what) {
      return fmt::format("blk.{}.{}.weight", layer, what);
    };
    const auto norm = [&](std::string_view what, uint64_t n) {
      plan.push_back({name(what), TensorType::F32, {n}, TensorRole::norm});
    };
    const auto linear = [&](std::string_view what, uint64_t in, uint64_t out, TensorRole role) {
      plan.push_back({name(what), TensorType::I2_S, {in, out}, role});
    };
    norm("attn_norm", embd);
    linear("attn_q", embd, embd, TensorRole::linear_in);
    linear("attn_k", embd, kv, TensorRole::linear_in);
    linear("attn_v", embd, kv, TensorRole::linear_in);
    norm("attn_sub_norm", embd);
    linear("attn_output", embd, embd, TensorRole::linear_out);
    norm("ffn_norm", embd);
    linear("ffn_gate", embd, ff, TensorRole::linear_in);
    linear("ffn_up", embd, ff, TensorRole::linear_in);
    norm("ffn_sub_norm", ff);
    linear("ffn_down", ff, embd, TensorRole::linear_out);
  }
  plan.push_back({"output_norm.weight", TensorType::F32, {embd}, TensorRole::norm});
  return plan;
}

std::string_view bitnet_chat_template() {
  return kBitnetChatTemplate;
}

Vocab resolve_vocab(const Shape& shape, const std::optional<std::string>& tokenizer_json) {
  if (!tokenizer_json) {
    Vocab vocab = builtin_vocab();
    if (shape.n_vocab != 0) vocab.pad_to(shape.n_vocab);
    return vocab;
  }
  Vocab vocab = load_hf_tokenizer(*tokenizer_json);
  if (shape.n_vocab != 0 && vocab.size() != shape.n_vocab) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("this preset needs a {}-token vocabulary; '{}' has {} tokens",
                            shape.n_vocab, *tokenizer_json, vocab.size()));
  }
  return vocab;
}

std::vector<gguf::KeyValue> metadata(const Options& options, const Shape& shape,
                                     const Vocab& vocab) {
  using gguf::Value;
  check_arch(options.arch);
  const std::string& a = options.arch;
  const auto u32 = [](uint64_t v) { return Value::u32(static_cast<uint32_t>(v)); };

  std::vector<Value> score_values;
  score_values.reserve(vocab.scores.size());
  for (float s : vocab.scores)
    score_values.push_back(Value::f32(s));
  std::vector<Value> type_values;
  type_values.reserve(vocab.types.size());
  for (TokenType t : vocab.types)
    type_values.push_back(Value::i32(static_cast<int32_t>(t)));

  // The order of the converter (add_meta_arch, add_meta_vocab, SpecialVocab) followed by
  // llama-quantize's general.quantization_version, as in the 2B-4T file.
  std::vector<gguf::KeyValue> kv;
  kv.push_back({"general.architecture", Value::string(a)});
  kv.push_back({"general.name",
                Value::string(fmt::format("bitnet-synth-{}-s{}", options.preset, options.seed))});
  kv.push_back({a + ".vocab_size", u32(vocab.size())});
  kv.push_back({a + ".context_length", u32(shape.n_ctx)});
  kv.push_back({a + ".embedding_length", u32(shape.n_embd)});
  kv.push_back({a + ".block_count", u32(shape.n_layer)});
  kv.push_back({a + ".feed_forward_length", u32(shape.n_ff)});
  kv.push_back({a + ".rope.dimension_count", u32(shape.n_embd / shape.n_head)});
  kv.push_back({a + ".attention.head_count", u32(shape.n_head)});
  kv.push_back({a + ".attention.head_count_kv", u32(shape.n_head_kv)});
  kv.push_back({"tokenizer.ggml.add_bos_token", Value::boolean(true)});
  kv.push_back({a + ".attention.layer_norm_rms_epsilon", Value::f32(1e-5f)});
  kv.push_back({a + ".rope.freq_base", Value::f32(500000.0f)});
  kv.push_back({"general.file_type", u32(kFileTypeI2S)});
  kv.push_back({"tokenizer.ggml.model", Value::string("gpt2")});
  if (options.pre) kv.push_back({"tokenizer.ggml.pre", Value::string(*options.pre)});
  kv.push_back({"tokenizer.ggml.tokens", Value::array(vocab.tokens)});
  kv.push_back(
      {"tokenizer.ggml.scores", Value::array(gguf::ValueType::float32, std::move(score_values))});
  kv.push_back(
      {"tokenizer.ggml.token_type", Value::array(gguf::ValueType::int32, std::move(type_values))});
  kv.push_back({"tokenizer.ggml.merges", Value::array(vocab.merges)});
  kv.push_back({"tokenizer.ggml.bos_token_id", u32(vocab.bos)});
  kv.push_back({"tokenizer.ggml.eos_token_id", u32(vocab.eos)});
  kv.push_back({"tokenizer.ggml.padding_token_id", u32(vocab.eos)});
  kv.push_back({"tokenizer.chat_template", Value::string(std::string(kBitnetChatTemplate))});
  kv.push_back({"general.quantization_version", u32(kQuantizationVersion)});
  return kv;
}

Summary write_model(const std::string& path, const Options& options, const Progress& progress) {
  check_arch(options.arch);
  const Shape shape = preset_shape(options.preset);
  const Vocab vocab = resolve_vocab(shape, options.tokenizer_json);
  const std::vector<TensorSpec> plan = tensor_plan(shape, vocab.size());

  gguf::Writer writer;
  for (auto& [key, value] : metadata(options, shape, vocab)) {
    writer.add_kv(std::move(key), std::move(value));
  }
  for (const TensorSpec& t : plan)
    writer.add_tensor(t.name, t.type, t.ne);

  Summary summary;
  summary.n_tensors = plan.size();
  summary.n_vocab = vocab.size();
  uint64_t bytes_total = 0;
  for (const gguf::TensorInfo& info : writer.tensors()) {
    bytes_total += info.nbytes;
    summary.n_params += info.n_elements();
  }

  TensorWriter tensor_writer(options.seed, bytes_total, progress);
  writer.write(path,
               [&](std::size_t index, const gguf::TensorInfo& info, gguf::Writer::Sink& sink) {
                 tensor_writer.write(index, plan[index], info, sink);
               });
  std::error_code ec;
  summary.file_size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(ErrorKind::io, fmt::format("cannot stat '{}': {}", path, ec.message()));
  return summary;
}

} // namespace bitnet::synth
