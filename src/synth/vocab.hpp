// Tokenizer vocabularies for synthetic models, in the form the 2B-4T GGUF stores them
// (tokenizer.ggml.model "gpt2", docs/gguf-format.md §6.1): imported from a Hugging Face
// tokenizer.json, or a small built-in byte-level BPE so a demo model needs no external file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::synth {

// llama.cpp token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t { normal = 1, control = 3, user_defined = 4 };

struct Vocab {
  std::vector<std::string> tokens; // by id, byte-level BPE strings
  std::vector<float> scores;       // 0 for vocabulary entries, -1000 for added ones
  std::vector<TokenType> types;
  std::vector<std::string> merges; // "left right", rank = index
  uint32_t bos = 0;
  uint32_t eos = 0;

  std::size_t size() const { return tokens.size(); }
  // Appends "[PAD<id>]" user-defined tokens (as the HF converters fill id holes) until the
  // vocabulary has n tokens. Throws Error(invalid_argument) when it already has more.
  void pad_to(std::size_t n);
};

// The GPT-2 byte-level symbol (UTF-8) that stands for byte b. Llama-3 ids 0..255 are these
// symbols in the order of byte_symbol_order().
std::string byte_symbol(uint8_t b);
// Bytes in the id order GPT-2 and Llama-3 give their 256 byte symbols: the printable
// ranges '!'..'~', '¡'..'¬', '®'..'ÿ' first, then the remaining bytes ascending.
std::vector<uint8_t> byte_symbol_order();

// The ten Llama-3 added tokens 128000..128009, <|begin_of_text|> .. <|eot_id|>.
const std::vector<std::string>& llama3_special_tokens();

// Built-in vocabulary: the 256 byte symbols (Llama-3 ids), merges learned by byte-level BPE
// from a built-in English text (most frequent pair first, ties by the byte order of the
// pair), then llama3_special_tokens() as control tokens. bos/eos are
// <|begin_of_text|>/<|end_of_text|>.
Vocab builtin_vocab();
// Learns up to max_merges merges from text (pre-split like GPT-2: optional space + letters,
// digits, other symbols, whitespace); stops when no pair occurs twice. Exposed for tests.
std::vector<std::string> learn_merges(std::string_view text, std::size_t max_merges);

// Reads a Hugging Face tokenizer.json (model.type "BPE"): tokens from model.vocab and
// added_tokens (special → control, others → user-defined), holes filled with "[PAD<id>]",
// merges as "a b" strings or ["a", "b"] pairs. bos/eos come from a tokenizer_config.json
// beside it when present, else from <|begin_of_text|>/<|end_of_text|>. Throws Error(io)
// when unreadable and Error(invalid_input) when the file is not such a tokenizer.
Vocab load_hf_tokenizer(const std::string& path);

} // namespace bitnet::synth
