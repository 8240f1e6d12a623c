#include "model/config.hpp"

#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace bitnet::model {

namespace {

using gguf::TensorType;

// Generous bounds: far above any real model, low enough that sizes derived from them
// (KV cache, scratch) cannot overflow or ask for absurd allocations.
constexpr int64_t kMaxEmbd = 1 << 16;
constexpr int64_t kMaxFf = 1 << 18;
constexpr int64_t kMaxLayer = 1024;
constexpr int64_t kMaxHead = 1024;
constexpr int64_t kMaxVocab = 1 << 22;
constexpr int64_t kMaxCtx = 1 << 24;

Arch arch_from_name(const std::string& name) {
  if (name == "bitnet-b1.58") return Arch::bitnet_b158;
  if (name == "bitnet-25") return Arch::bitnet_25;
  if (name == "bitnet") return Arch::bitnet;
  if (name == "llama") return Arch::llama;
  if (name.empty()) throw Error(ErrorKind::format, "general.architecture is missing");
  throw Error(ErrorKind::unsupported,
              fmt::format("architecture '{}' is not supported (bitnet-b1.58, bitnet-25, "
                          "bitnet, llama)",
                          name));
}

int64_t checked_uint(const gguf::File& file, const std::string& key, int64_t lo, int64_t hi,
                     std::optional<int64_t> fallback = std::nullopt) {
  const std::optional<uint64_t> v = file.find_uint(key);
  if (!v && !fallback)
    throw Error(ErrorKind::format, fmt::format("metadata key {} is missing", key));
  const uint64_t value = v ? *v : static_cast<uint64_t>(*fallback);
  if (value < static_cast<uint64_t>(lo) || value > static_cast<uint64_t>(hi))
    throw Error(ErrorKind::format,
                fmt::format("{} = {} is outside the supported range [{}, {}]", key, value, lo, hi));
  return static_cast<int64_t>(value);
}

const gguf::TensorInfo& require_tensor(const gguf::File& file, const std::string& name,
                                       std::initializer_list<uint64_t> ne,
                                       std::initializer_list<TensorType> types) {
  const gguf::TensorInfo* t = file.find_tensor(name);
  if (!t) throw Error(ErrorKind::format, fmt::format("tensor {} is missing", name));
  const std::vector<uint64_t> want(ne);
  // Trailing 1-sized dims are not significant (ggml pads shapes to 4 dims).
  std::vector<uint64_t> have = t->ne;
  while (have.size() > want.size() && have.back() == 1)
    have.pop_back();
  if (have != want)
    throw Error(ErrorKind::format, fmt::format("tensor {} has shape [{}], expected [{}]", name,
                                               fmt::join(t->ne, ", "), fmt::join(want, ", ")));
  for (TensorType type : types)
    if (t->type == type) return *t;
  std::vector<std::string_view> names;
  for (TensorType type : types)
    names.emplace_back(gguf::type_name(type));
  // An unquantized BitNet checkpoint (F32/F16/BF16 linear weights): say how to convert it.
  const bool unquantized =
      types.size() == 1 && *types.begin() == TensorType::I2_S &&
      (t->type == TensorType::F32 || t->type == TensorType::F16 || t->type == TensorType::BF16);
  throw Error(ErrorKind::unsupported,
              fmt::format("tensor {} has type {}, expected {}{}", name, gguf::type_name(t->type),
                          fmt::join(names, " or "),
                          unquantized ? " (an unquantized model: convert it with `bitnet "
                                        "quantize IN.gguf OUT.gguf`)"
                                      : ""));
}

// The layer index N of a tensor named "blk.N.<name>", or nothing when the name has no index.
std::optional<int64_t> layer_of(std::string_view name) {
  name.remove_prefix(4); // "blk."
  int64_t layer = -1;
  const char* end = name.data() + name.size();
  const auto [stop, ec] = std::from_chars(name.data(), end, layer);
  if (ec != std::errc() || layer < 0 || stop == end || *stop != '.') return std::nullopt;
  return layer;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

} // namespace

const char* to_string(Arch arch) noexcept {
  switch (arch) {
  case Arch::bitnet_b158:
    return "bitnet-b1.58";
  case Arch::bitnet_25:
    return "bitnet-25";
  case Arch::bitnet:
    return "bitnet";
  case Arch::llama:
    return "llama";
  }
  return "?";
}

Config load_config(const gguf::File& file) {
  Config c;
  const std::string a = file.architecture();
  c.arch = arch_from_name(a);
  const auto key = [&](std::string_view k) { return fmt::format("{}.{}", a, k); };

  c.n_embd = checked_uint(file, key("embedding_length"), 1, kMaxEmbd);
  c.n_layer = checked_uint(file, key("block_count"), 1, kMaxLayer);
  c.n_ff = checked_uint(file, key("feed_forward_length"), 1, kMaxFf);
  c.n_head = checked_uint(file, key("attention.head_count"), 1, kMaxHead);
  c.n_head_kv = checked_uint(file, key("attention.head_count_kv"), 1, kMaxHead, c.n_head);
  c.n_ctx_train = checked_uint(file, key("context_length"), 1, kMaxCtx);
  if (c.n_embd % c.n_head != 0)
    throw Error(ErrorKind::format,
                fmt::format("{} heads do not divide embedding_length {}", c.n_head, c.n_embd));
  if (c.n_head % c.n_head_kv != 0)
    throw Error(ErrorKind::format,
                fmt::format("{} kv heads do not divide {} heads", c.n_head_kv, c.n_head));
  c.head_dim = c.n_embd / c.n_head;
  c.n_rot = checked_uint(file, key("rope.dimension_count"), 1, c.head_dim, c.head_dim);
  // Like the fork (GGML_ASSERT(n_embd_head == n_rot)): partial rotary is not used by any
  // BitNet model.
  if (c.n_rot != c.head_dim || c.head_dim % 2 != 0)
    throw Error(ErrorKind::unsupported, fmt::format("rope.dimension_count {} must equal the even "
                                                    "head size {}",
                                                    c.n_rot, c.head_dim));
  c.rope_base = static_cast<float>(file.find_float(key("rope.freq_base")).value_or(10000.0));
  c.rms_eps =
      static_cast<float>(file.find_float(key("attention.layer_norm_rms_epsilon")).value_or(1e-5));
  if (!std::isfinite(c.rope_base) || !(c.rope_base > 0.0f))
    throw Error(ErrorKind::format,
                fmt::format("rope.freq_base {} is not a finite positive number", c.rope_base));
  if (!std::isfinite(c.rms_eps) || !(c.rms_eps > 0.0f) || c.rms_eps > 1.0f)
    throw Error(ErrorKind::format,
                fmt::format("attention.layer_norm_rms_epsilon {} is not in (0, 1]", c.rms_eps));
  if (file.find_tensor("rope_freqs.weight"))
    throw Error(ErrorKind::unsupported, "tensor rope_freqs.weight (rope scaling) is not supported");

  c.rope_neox = c.arch != Arch::llama;
  c.ffn_act =
      (c.arch == Arch::bitnet_b158 || c.arch == Arch::bitnet_25) ? FfnAct::relu_sqr : FfnAct::silu;
  c.has_sub_norms = c.arch != Arch::llama;

  // I2_S rows are whole 128-element blocks: every matmul input width must be a multiple.
  if (c.n_embd % 128 != 0 || c.n_ff % 128 != 0)
    throw Error(ErrorKind::unsupported,
                fmt::format("embedding_length {} and feed_forward_length {} must be multiples of "
                            "128 for I2_S weights",
                            c.n_embd, c.n_ff));

  const gguf::TensorInfo* embd = file.find_tensor("token_embd.weight");
  if (!embd) throw Error(ErrorKind::format, "tensor token_embd.weight is missing");
  if (embd->ne.size() < 2)
    throw Error(ErrorKind::format, "tensor token_embd.weight is not a matrix");
  const int64_t vocab = static_cast<int64_t>(embd->ne[1]);
  if (vocab < 1 || vocab > kMaxVocab)
    throw Error(ErrorKind::format, fmt::format("token_embd.weight has {} rows", vocab));
  c.n_vocab = checked_uint(file, key("vocab_size"), vocab, vocab, vocab);
  const uint64_t ue = static_cast<uint64_t>(c.n_embd);
  const uint64_t uv = static_cast<uint64_t>(c.n_vocab);
  c.embd_type =
      require_tensor(file, "token_embd.weight", {ue, uv}, {TensorType::F16, TensorType::Q8_0}).type;
  c.output_type = c.embd_type;
  c.tied_output = true;
  // bitnet-b1.58/-25 and bitnet always use token_embd as the head (the fork's graphs ignore
  // output.weight); llama uses output.weight when present.
  if (c.arch == Arch::llama && file.find_tensor("output.weight")) {
    c.output_type =
        require_tensor(file, "output.weight", {ue, uv}, {TensorType::F16, TensorType::Q8_0}).type;
    c.tied_output = false;
  }
  require_tensor(file, "output_norm.weight", {ue}, {TensorType::F32});

  for (const gguf::TensorInfo& t : file.tensors()) {
    if (!t.name.starts_with("blk.")) continue;
    // A layer the graph would not run: block_count and the tensors disagree.
    const std::optional<int64_t> layer = layer_of(t.name);
    if (!layer || *layer >= c.n_layer)
      throw Error(ErrorKind::format, fmt::format("tensor {} is not in a layer below block_count {}",
                                                 t.name, c.n_layer));
    if (ends_with(t.name, ".bias") || ends_with(t.name, ".scale"))
      throw Error(ErrorKind::unsupported,
                  fmt::format("tensor {} (bias or extra scale) is not supported", t.name));
  }

  const uint64_t ukv = static_cast<uint64_t>(c.n_embd_kv());
  const uint64_t uf = static_cast<uint64_t>(c.n_ff);
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const auto name = [&](std::string_view t) { return fmt::format("blk.{}.{}.weight", il, t); };
    require_tensor(file, name("attn_norm"), {ue}, {TensorType::F32});
    require_tensor(file, name("ffn_norm"), {ue}, {TensorType::F32});
    if (c.has_sub_norms) {
      require_tensor(file, name("attn_sub_norm"), {ue}, {TensorType::F32});
      require_tensor(file, name("ffn_sub_norm"), {uf}, {TensorType::F32});
    }
    require_tensor(file, name("attn_q"), {ue, ue}, {TensorType::I2_S});
    require_tensor(file, name("attn_k"), {ue, ukv}, {TensorType::I2_S});
    require_tensor(file, name("attn_v"), {ue, ukv}, {TensorType::I2_S});
    require_tensor(file, name("attn_output"), {ue, ue}, {TensorType::I2_S});
    require_tensor(file, name("ffn_gate"), {ue, uf}, {TensorType::I2_S});
    require_tensor(file, name("ffn_up"), {ue, uf}, {TensorType::I2_S});
    require_tensor(file, name("ffn_down"), {uf, ue}, {TensorType::I2_S});
  }
  return c;
}

} // namespace bitnet::model
