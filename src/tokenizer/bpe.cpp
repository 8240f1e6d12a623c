#include "tokenizer/bpe.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "bitnet/error.hpp"
#include "tokenizer/byte_level.hpp"

namespace bitnet::tokenizer {

namespace {

// Min-heap order: lowest rank first, then the leftmost pair.
bool later(const BpeEncoder::Work::Bigram& a, const BpeEncoder::Work::Bigram& b) {
  return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
}

} // namespace

BpeEncoder::BpeEncoder(const Vocab& vocab, const std::vector<std::string_view>& merges)
    : vocab_(&vocab) {
  std::string symbol;
  for (int b = 0; b < 256; ++b) {
    symbol.clear();
    append_utf8(symbol, byte_to_code_point(static_cast<uint8_t>(b)));
    const auto id = vocab.find(symbol);
    if (!id) {
      throw Error(ErrorKind::format,
                  fmt::format("tokenizer.ggml.tokens: byte-level vocabulary has no symbol for "
                              "byte 0x{:02X}",
                              b));
    }
    byte_ids_[b] = *id;
  }
  merges_.reserve(merges.size());
  std::string joined;
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string_view merge = merges[rank];
    // llama.cpp splits at the first space after the first byte.
    const std::size_t space = merge.find(' ', 1);
    if (space == std::string_view::npos) continue;
    const auto left = vocab.find(merge.substr(0, space));
    const auto right = vocab.find(merge.substr(space + 1));
    if (!left || !right) continue;
    joined.assign(merge.substr(0, space));
    joined.append(merge.substr(space + 1));
    const auto result = vocab.find(joined);
    if (!result) continue;
    merges_.emplace(key(*left, *right), Merge{static_cast<int32_t>(rank), *result});
  }
}

void BpeEncoder::push_bigram(int32_t left, Work& work) const {
  if (left < 0) return;
  const int32_t right = work.symbols[left].next;
  if (right < 0) return;
  const int32_t left_id = work.symbols[left].id;
  const int32_t right_id = work.symbols[right].id;
  const auto it = merges_.find(key(left_id, right_id));
  if (it == merges_.end()) return;
  work.queue.push_back({it->second.rank, left, right, left_id, right_id, it->second.result});
  std::push_heap(work.queue.begin(), work.queue.end(), later);
}

void BpeEncoder::encode(std::string_view piece, bool ignore_merges, std::vector<int32_t>& out,
                        Work& work) const {
  if (piece.empty()) return;
  if (ignore_merges) {
    bytes_to_symbols(piece, work.symbols_text);
    if (const auto id = vocab_->find(work.symbols_text)) {
      out.push_back(*id);
      return;
    }
  }
  const auto n = static_cast<int32_t>(piece.size());
  work.symbols.resize(piece.size());
  for (int32_t i = 0; i < n; ++i) {
    work.symbols[i] = {byte_ids_[static_cast<uint8_t>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }
  work.queue.clear();
  for (int32_t i = 0; i + 1 < n; ++i) push_bigram(i, work);

  while (!work.queue.empty()) {
    std::pop_heap(work.queue.begin(), work.queue.end(), later);
    const Work::Bigram bigram = work.queue.back();
    work.queue.pop_back();
    Work::Symbol& left = work.symbols[bigram.left];
    // Stale when either side has been merged since the pair was queued.
    if (left.id != bigram.left_id || left.next != bigram.right ||
        work.symbols[bigram.right].id != bigram.right_id) {
      continue;
    }
    Work::Symbol& right = work.symbols[bigram.right];
    left.id = bigram.result;
    left.next = right.next;
    if (right.next >= 0) work.symbols[right.next].prev = bigram.left;
    right.id = -1;
    push_bigram(left.prev, work);
    push_bigram(bigram.left, work);
  }
  for (int32_t i = 0; i >= 0; i = work.symbols[i].next) out.push_back(work.symbols[i].id);
}

} // namespace bitnet::tokenizer
