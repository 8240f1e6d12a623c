// The token list of a GGUF vocabulary: texts, llama.cpp token types and scores, with a
// text → id index. Texts live in one buffer and the index is an open-addressing table of
// ids, so loading 128k tokens costs few allocations and lookups few cache misses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::tokenizer {

// tokenizer.ggml.token_type values (llama.cpp LLAMA_TOKEN_TYPE_*).
enum class TokenType : int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6,
};

// FNV-1a over a string, continuing from `h` so a hash can be built from parts.
inline uint64_t hash_text(std::string_view s, uint64_t h = 0xCBF29CE484222325ull) {
  for (const char c : s)
    h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ull;
  return h;
}

class Vocab {
public:
  void reserve(std::size_t n_tokens, std::size_t n_bytes);
  void add(std::string_view text, TokenType type, float score);
  // Builds the text index; a text given twice maps to its last id, as in llama.cpp.
  void index();

  int32_t size() const { return static_cast<int32_t>(types_.size()); }
  std::string_view text(int32_t id) const {
    return std::string_view(texts_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  TokenType type(int32_t id) const { return types_[id]; }
  float score(int32_t id) const { return scores_[id]; }
  std::optional<int32_t> find(std::string_view text) const;

private:
  std::string texts_;
  std::vector<std::size_t> offsets_{0};
  std::vector<TokenType> types_;
  std::vector<float> scores_;
  struct Slot {
    int32_t id;   // -1 when empty
    uint32_t tag; // high half of the text's hash, checked before the text
  };
  std::vector<Slot> slots_; // size is a power of two
};

} // namespace bitnet::tokenizer
