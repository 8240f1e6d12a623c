#include "tokenizer/spm.hpp"

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "bitnet/error.hpp"
#include "bitnet/utf8.hpp"

namespace bitnet::tokenizer {

namespace {

struct Symbol {
  std::size_t offset;
  std::size_t length; // 0 once merged into its left neighbour
  int32_t prev;
  int32_t next;
};

struct Bigram {
  float score;
  int32_t left;
  int32_t right;
  std::size_t length;
};

// Max-heap order: highest score first, then the leftmost pair.
struct Before {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

} // namespace

SpmEncoder::SpmEncoder(const Vocab& vocab, std::optional<int32_t> unk) : vocab_(&vocab), unk_(unk) {
  for (int b = 0; b < 256; ++b) {
    auto id = vocab.find(fmt::format("<0x{:02X}>", b));
    if (!id) id = vocab.find(std::string(1, static_cast<char>(b)));
    byte_ids_[b] = id ? *id : -1;
  }
}

void SpmEncoder::encode(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<Symbol> symbols;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t n = std::max<std::size_t>(1, utf8_sequence_length(text, pos));
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({pos, n, index - 1, pos + n < text.size() ? index + 1 : -1});
    pos += n;
  }
  std::vector<Bigram> queue;
  const auto push = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const std::size_t length = symbols[left].length + symbols[right].length;
    const auto id = vocab_->find(text.substr(symbols[left].offset, length));
    if (!id) return;
    queue.push_back({vocab_->score(*id), left, right, length});
    std::push_heap(queue.begin(), queue.end(), Before{});
  };
  for (std::size_t i = 1; i < symbols.size(); ++i) {
    push(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
  }
  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), Before{});
    const Bigram bigram = queue.back();
    queue.pop_back();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    // Symbols only grow, so an unchanged total length means neither side has merged since.
    if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length) {
      continue;
    }
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    push(left.prev, bigram.left);
    push(bigram.left, left.next);
  }
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].offset, symbols[i].length);
    if (const auto id = vocab_->find(piece)) {
      out.push_back(*id);
      continue;
    }
    for (const char c : piece) {
      const int32_t byte_id = byte_ids_[static_cast<uint8_t>(c)];
      if (byte_id >= 0) {
        out.push_back(byte_id);
      } else if (unk_) {
        out.push_back(*unk_);
      } else {
        throw Error(ErrorKind::invalid_input,
                    fmt::format("SentencePiece vocabulary has no token for byte 0x{:02X} and no "
                                "unknown token",
                                static_cast<uint8_t>(c)));
      }
    }
  }
}

} // namespace bitnet::tokenizer
