// Synthetic BitNet b1.58 models in the exact format of microsoft/bitnet-b1.58-2B-4T-gguf
// (docs/gguf-format.md §4, §6): the real metadata keys in the real order, the real tensor names,
// shapes and types (F16 token_embd used as the tied head, F32 norms, I2_S linear weights packed as
// bitnet.cpp packs them), random ternary weights and a chosen tokenizer.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/convert.hpp"
#include "gguf/gguf.hpp"
#include "synth/vocab.hpp"

namespace bitnet::synth {

struct Shape {
  uint32_t n_embd = 0;
  uint32_t n_layer = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t n_ff = 0;
  uint32_t n_ctx = 0;
  uint32_t n_vocab = 0; // 0: the tokenizer's size
};

// "tiny", "small" or "2b4t" (the real 2B-4T shape, n_vocab 128256). Throws
// Error(invalid_argument) for any other name.
Shape preset_shape(std::string_view preset);
const std::vector<std::string>& preset_names();

// How a tensor's values are drawn (and which gain its scale uses).
enum class TensorRole { embedding, norm, linear_in, linear_out };

struct TensorSpec {
  std::string name;
  gguf::TensorType type;
  std::vector<uint64_t> ne; // innermost first
  TensorRole role;
};

// All tensors in file order: token_embd, then per layer attn_norm, attn_q, attn_k, attn_v,
// attn_sub_norm, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_sub_norm, ffn_down, then
// output_norm. No output.weight: the head is tied to token_embd.
std::vector<TensorSpec> tensor_plan(const Shape& shape, uint64_t n_vocab);

// The chat template the BitNet converter writes into the 2B-4T GGUF (docs/gguf-format.md §6.4).
std::string_view bitnet_chat_template();

using Options = SynthOptions; // include/bitnet/convert.hpp

// The vocabulary for a preset: the tokenizer.json's (its size must equal a preset's fixed
// n_vocab, else Error(invalid_argument)) or the built-in one, padded to the fixed n_vocab.
Vocab resolve_vocab(const Shape& shape, const std::optional<std::string>& tokenizer_json);

// Metadata in the order of the 2B-4T file: 24 keys (25 with --pre).
std::vector<gguf::KeyValue> metadata(const Options& options, const Shape& shape,
                                     const Vocab& vocab);

using Summary = SynthSummary;

// Writes the model to `path`, one tensor (token_embd: a block of rows) in memory at a time.
// Same options → identical bytes. Throws Error(invalid_argument) for a bad preset or arch,
// and the errors of resolve_vocab and gguf::Writer::write.
Summary write_model(const std::string& path, const Options& options, const Progress& progress = {});

} // namespace bitnet::synth
