#include "gguf/quantize.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "gguf/i2s.hpp"
#include "util/fp16.hpp"

namespace bitnet::gguf {

namespace {

constexpr uint32_t kFileTypeI2S = 40;        // LLAMA_FTYPE_MOSTLY_I2_S (docs/gguf-format.md §2)
constexpr uint32_t kQuantizationVersion = 2; // GGML_QNT_VERSION
constexpr uint64_t kQ8Block = 32;
constexpr uint64_t kQ8BlockBytes = 34;
constexpr uint64_t kHeadQuantBlock = 256; // QK_K: heads whose rows are not a multiple get Q8_0
// quantize_i2_s treats |x| below this as zero.
constexpr double kI2sZero = 1e-6;
// Weights count as ternary × one scale when every non-zero magnitude is this close to the
// largest (F16/BF16 storage of one value rounds identically, so this only absorbs converters
// that stored slightly different roundings).
constexpr double kTernaryTolerance = 1e-3;
// Weights converted per step when streaming a tensor, a multiple of the I2_S block.
constexpr uint64_t kChunk = kI2sBlock * 512;

bool is_float_type(TensorType t) {
  return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16;
}

// Converts elements [first, first + out.size()) of an F32/F16/BF16 tensor to float.
void load_floats(TensorType type, std::span<const uint8_t> data, uint64_t first,
                 std::span<float> out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    const uint64_t j = first + i;
    switch (type) {
    case TensorType::F32:
      std::memcpy(&out[i], data.data() + 4 * j, 4);
      break;
    case TensorType::F16: {
      uint16_t h;
      std::memcpy(&h, data.data() + 2 * j, 2);
      out[i] = fp16_to_fp32(h);
      break;
    }
    default: { // BF16: the high half of an f32
      uint16_t h;
      std::memcpy(&h, data.data() + 2 * j, 2);
      out[i] = std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
      break;
    }
    }
  }
}

enum class Action { copy, to_i2s, to_f16, to_q8_0 };

struct Plan {
  Action action = Action::copy;
  TensorType out_type = TensorType::F32;
  bool ternarize = false; // to_i2s: absmean ternarization
  float absmean_inv = 0;  // to_i2s with ternarize: s = 1/clamp(mean|W|, 1e-5)
  float scale = 0;        // to_i2s: the stored per-tensor scale
};

// Decides how a linear weight becomes I2_S, refusing non-ternary weights unless asked to
// ternarize them. Reads the tensor once.
Plan plan_linear(const File& in, const TensorInfo& t, bool allow_ternarize) {
  const auto data = in.tensor_data(t);
  const uint64_t n = t.n_elements();
  double amax = 0;
  double min_nonzero = INFINITY;
  double sum_abs = 0;
  std::vector<float> x(std::min(n, kChunk));
  for (uint64_t first = 0; first < n; first += x.size()) {
    const std::span<float> chunk = std::span(x).first(std::min<uint64_t>(x.size(), n - first));
    load_floats(t.type, data, first, chunk);
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      if (!std::isfinite(chunk[i])) {
        throw Error(ErrorKind::invalid_input,
                    fmt::format("{}: tensor '{}': non-finite value at element {}", in.path(),
                                t.name, first + i));
      }
      const double a = std::fabs(static_cast<double>(chunk[i]));
      amax = std::max(amax, a);
      sum_abs += a;
      if (a >= kI2sZero) min_nonzero = std::min(min_nonzero, a);
    }
  }
  Plan p;
  p.action = Action::to_i2s;
  p.out_type = TensorType::I2_S;
  if (min_nonzero == INFINITY || min_nonzero >= amax * (1 - kTernaryTolerance)) {
    p.scale = static_cast<float>(amax); // quantize_i2_s: max|x| in double, stored as float
    return p;
  }
  if (!allow_ternarize) {
    throw Error(ErrorKind::invalid_input,
                fmt::format("{}: tensor '{}' is not ternary (magnitudes {:g} and {:g} differ); "
                            "pass --ternarize to ternarize it with absmean",
                            in.path(), t.name, min_nonzero, amax));
  }
  // BitNet's weight_quant: s = 1/clamp(mean|W|, 1e-5); Wq = clamp(round(W*s), -1, 1)/s.
  p.ternarize = true;
  p.absmean_inv = 1.0f / std::max(static_cast<float>(sum_abs / static_cast<double>(n)), 1e-5f);
  p.scale = 1.0f / p.absmean_inv; // max|Wq|, what quantize_i2_s then stores
  return p;
}

int8_t ternary_code(float x, const Plan& p) {
  if (p.ternarize) {
    return static_cast<int8_t>(std::clamp(std::nearbyint(x * p.absmean_inv), -1.0f, 1.0f));
  }
  if (std::fabs(static_cast<double>(x)) < kI2sZero) return 0;
  return x > 0 ? 1 : -1;
}

void write_i2s(const File& in, const TensorInfo& t, const Plan& p, Writer::Sink& sink) {
  const auto data = in.tensor_data(t);
  const uint64_t n = t.n_elements();
  std::vector<float> x(std::min(n, kChunk));
  std::vector<int8_t> codes(x.size());
  std::vector<uint8_t> packed(x.size() / 4);
  for (uint64_t first = 0; first < n; first += x.size()) {
    const std::size_t len = std::min<uint64_t>(x.size(), n - first);
    load_floats(t.type, data, first, std::span(x).first(len));
    for (std::size_t i = 0; i < len; ++i)
      codes[i] = ternary_code(x[i], p);
    pack_i2s_codes(std::span(codes).first(len), std::span(packed).first(len / 4));
    sink.write(std::span(packed).first(len / 4));
  }
  const auto trailer = i2s_trailer(p.scale);
  sink.write(trailer);
}

// F16 and Q8_0 conversions work one row at a time (Q8_0 blocks never cross rows).
void write_converted(const File& in, const TensorInfo& t, TensorType out_type, Writer::Sink& sink) {
  const auto data = in.tensor_data(t);
  const uint64_t row = t.ne[0];
  const uint64_t rows = t.n_elements() / row;
  std::vector<float> x(row);
  std::vector<uint8_t> out(tensor_nbytes(out_type, row));
  for (uint64_t r = 0; r < rows; ++r) {
    load_floats(t.type, data, r * row, x);
    if (out_type == TensorType::Q8_0) {
      quantize_row_q8_0(x, out);
    } else {
      for (uint64_t i = 0; i < row; ++i) {
        const uint16_t h = fp32_to_fp16(x[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
    }
    sink.write(out);
  }
}

// gguf_set_val semantics: replace in place when present, else append.
void set_u32(std::vector<KeyValue>& metadata, std::string_view key, uint32_t value) {
  for (KeyValue& kv : metadata) {
    if (kv.key == key) {
      kv.value = Value::u32(value);
      return;
    }
  }
  metadata.push_back({std::string(key), Value::u32(value)});
}

} // namespace

bool is_linear_weight(std::string_view name, std::size_t n_dims) {
  if (n_dims != 2 || !name.starts_with("blk.")) return false;
  name.remove_prefix(4);
  const std::size_t dot = name.find('.');
  if (dot == 0 || dot == std::string_view::npos ||
      !std::all_of(name.begin(), name.begin() + static_cast<std::ptrdiff_t>(dot),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  name.remove_prefix(dot + 1);
  for (std::string_view linear :
       {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
    if (name.size() == linear.size() + 7 && name.starts_with(linear) && name.ends_with(".weight")) {
      return true;
    }
  }
  return false;
}

void quantize_row_q8_0(std::span<const float> x, std::span<uint8_t> out) {
  if (x.size() % kQ8Block != 0 || out.size() != x.size() / kQ8Block * kQ8BlockBytes) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("Q8_0: {} values into {} bytes", x.size(), out.size()));
  }
  for (std::size_t b = 0; b < x.size() / kQ8Block; ++b) {
    const float* v = x.data() + b * kQ8Block;
    uint8_t* dst = out.data() + b * kQ8BlockBytes;
    float amax = 0.0f;
    for (uint64_t i = 0; i < kQ8Block; ++i)
      amax = std::max(amax, std::fabs(v[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = fp32_to_fp16(d);
    std::memcpy(dst, &dh, 2);
    for (uint64_t i = 0; i < kQ8Block; ++i) {
      dst[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::roundf(v[i] * id)));
    }
  }
}

QuantizeSummary quantize(const File& in, const std::string& out_path,
                         const QuantizeOptions& options) {
  if (options.type != TensorType::I2_S) {
    throw Error(
        ErrorKind::invalid_argument,
        fmt::format("quantize: type {} is not supported (only I2_S)", type_name(options.type)));
  }
  // The output head: a separate output.weight, else the tied token embedding.
  const TensorInfo* head = in.find_tensor("output.weight");
  if (!head) head = in.find_tensor("token_embd.weight");

  QuantizeSummary summary;
  summary.bytes_in = in.file_size();
  std::vector<Plan> plans(in.tensors().size());
  for (std::size_t i = 0; i < in.tensors().size(); ++i) {
    const TensorInfo& t = in.tensors()[i];
    Plan& p = plans[i];
    p.out_type = t.type;
    if (is_linear_weight(t.name, t.ne.size()) && t.type != TensorType::I2_S) {
      if (!is_float_type(t.type)) {
        throw Error(ErrorKind::unsupported,
                    fmt::format("{}: tensor '{}': cannot requantize {} to I2_S (needs F32, F16 "
                                "or BF16)",
                                in.path(), t.name, type_name(t.type)));
      }
      if (t.ne[0] % kI2sBlock != 0) {
        throw Error(ErrorKind::unsupported,
                    fmt::format("{}: tensor '{}': rows of {} weights are not a multiple of {}",
                                in.path(), t.name, t.ne[0], kI2sBlock));
      }
      p = plan_linear(in, t, options.ternarize);
      ++summary.n_quantized;
      if (p.ternarize) ++summary.n_ternarized;
    } else if (&t == head) {
      const TensorType target = t.ne[0] % kHeadQuantBlock != 0 ? TensorType::Q8_0 : TensorType::F16;
      if (t.type == target) continue;
      if (!is_float_type(t.type) || t.ne[0] % kQ8Block != 0) {
        throw Error(ErrorKind::unsupported,
                    fmt::format("{}: tensor '{}': cannot convert {} [{} per row] to {}", in.path(),
                                t.name, type_name(t.type), t.ne[0], type_name(target)));
      }
      p.action = target == TensorType::Q8_0 ? Action::to_q8_0 : Action::to_f16;
      p.out_type = target;
    }
  }

  std::vector<KeyValue> metadata = in.metadata();
  set_u32(metadata, "general.quantization_version", kQuantizationVersion);
  set_u32(metadata, "general.file_type", kFileTypeI2S);

  Writer writer(in.alignment());
  for (KeyValue& kv : metadata)
    writer.add_kv(std::move(kv.key), std::move(kv.value));
  for (std::size_t i = 0; i < in.tensors().size(); ++i) {
    const TensorInfo& t = in.tensors()[i];
    writer.add_tensor(t.name, plans[i].out_type, t.ne);
  }
  writer.write(out_path, [&](std::size_t i, const TensorInfo&, Writer::Sink& sink) {
    const TensorInfo& t = in.tensors()[i];
    const Plan& p = plans[i];
    spdlog::debug("[{}/{}] {} {} -> {}", i + 1, plans.size(), t.name, type_name(t.type),
                  type_name(p.out_type));
    switch (p.action) {
    case Action::copy:
      sink.write(in.tensor_data(t));
      break;
    case Action::to_i2s:
      write_i2s(in, t, p, sink);
      break;
    case Action::to_f16:
    case Action::to_q8_0:
      write_converted(in, t, p.out_type, sink);
      break;
    }
  });
  summary.bytes_out = std::filesystem::file_size(out_path);
  return summary;
}

} // namespace bitnet::gguf
