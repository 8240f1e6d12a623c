// The token list of a GGUF vocabulary: texts, llama.cpp token types and scores, with a
// text → id index. Texts live in one buffer so loading 128k tokens costs few allocations.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
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
  std::optional<int32_t> find(std::string_view text) const {
    const auto it = ids_.find(text);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }

private:
  std::string texts_;
  std::vector<std::size_t> offsets_{0};
  std::vector<TokenType> types_;
  std::vector<float> scores_;
  std::unordered_map<std::string_view, int32_t> ids_;
};

} // namespace bitnet::tokenizer
