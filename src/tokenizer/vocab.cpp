#include "tokenizer/vocab.hpp"

namespace bitnet::tokenizer {

void Vocab::reserve(std::size_t n_tokens, std::size_t n_bytes) {
  texts_.reserve(n_bytes);
  offsets_.reserve(n_tokens + 1);
  types_.reserve(n_tokens);
  scores_.reserve(n_tokens);
}

void Vocab::add(std::string_view text, TokenType type, float score) {
  texts_.append(text);
  offsets_.push_back(texts_.size());
  types_.push_back(type);
  scores_.push_back(score);
}

void Vocab::index() {
  ids_.clear();
  ids_.reserve(types_.size());
  for (int32_t id = 0; id < size(); ++id) ids_[text(id)] = id;
}

} // namespace bitnet::tokenizer
