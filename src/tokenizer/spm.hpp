// SentencePiece BPE (tokenizer.ggml.model = llama, the 1bitLLM models): the highest-scoring
// adjacent pair whose concatenation is a token merges first, ties to the leftmost
// (llama.cpp llm_tokenizer_spm_session); characters left without a token fall back to their
// <0xXX> byte tokens.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.hpp"

namespace bitnet::tokenizer {

// U+2581, which SentencePiece writes for a space.
inline constexpr std::string_view kSpmSpace = "\xE2\x96\x81";

class SpmEncoder {
public:
  SpmEncoder(const Vocab& vocab, std::optional<int32_t> unk);
  // Appends the ids of `text`, whose spaces are already written as kSpmSpace. Throws
  // Error(invalid_input) when a byte has neither a byte token nor an unknown token.
  void encode(std::string_view text, std::vector<int32_t>& out) const;

private:
  const Vocab* vocab_;
  std::array<int32_t, 256> byte_ids_{}; // -1: no byte token
  std::optional<int32_t> unk_;
};

} // namespace bitnet::tokenizer
