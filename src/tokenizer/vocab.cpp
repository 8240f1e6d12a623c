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
  std::size_t capacity = 16;
  while (capacity < 2 * types_.size())
    capacity *= 2;
  slots_.assign(capacity, Slot{-1, 0});
  const std::size_t mask = capacity - 1;
  for (int32_t id = 0; id < size(); ++id) {
    const std::string_view t = text(id);
    const uint64_t h = hash_text(t);
    const auto tag = static_cast<uint32_t>(h >> 32);
    std::size_t i = h & mask;
    while (slots_[i].id >= 0 && (slots_[i].tag != tag || text(slots_[i].id) != t)) {
      i = (i + 1) & mask;
    }
    slots_[i] = Slot{id, tag};
  }
}

std::optional<int32_t> Vocab::find(std::string_view t) const {
  if (slots_.empty()) return std::nullopt;
  const std::size_t mask = slots_.size() - 1;
  const uint64_t h = hash_text(t);
  const auto tag = static_cast<uint32_t>(h >> 32);
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot slot = slots_[i];
    if (slot.id < 0) return std::nullopt;
    if (slot.tag == tag && text(slot.id) == t) return slot.id;
  }
}

} // namespace bitnet::tokenizer
