#include "tokenizer/bpe.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "bitnet/error.hpp"
#include "tokenizer/byte_level.hpp"

namespace bitnet::tokenizer {

namespace {

// Min-heap order: lowest rank first, then the leftmost pair. A function object, so the
// heap operations inline it.
struct Later {
  bool operator()(const BpeEncoder::Work::Bigram& a, const BpeEncoder::Work::Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

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
  std::size_t n_bytes = 0;
  for (const std::string_view m : merges)
    n_bytes += m.size();
  texts_.reserve(n_bytes);
  offsets_.reserve(merges.size() + 1);
  offsets_.push_back(0);
  std::size_t capacity = 16;
  while (capacity < 2 * merges.size())
    capacity *= 2;
  slots_.assign(capacity, Slot{-1, 0});
  const std::size_t mask = capacity - 1;
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string_view m = merges[rank];
    texts_.append(m);
    offsets_.push_back(texts_.size());
    const uint64_t h = hash_text(m);
    const auto tag = static_cast<uint32_t>(h >> 32);
    std::size_t i = h & mask;
    while (slots_[i].rank >= 0 && (slots_[i].tag != tag || merge(slots_[i].rank) != m)) {
      i = (i + 1) & mask;
    }
    // The first (lowest-ranked) copy of a rule wins, as in llama.cpp's bpe_ranks.
    if (slots_[i].rank < 0) slots_[i] = Slot{static_cast<int32_t>(rank), tag};
  }
}

int32_t BpeEncoder::rank_of(int32_t left_id, int32_t right_id) const {
  const std::string_view left = vocab_->text(left_id);
  const std::string_view right = vocab_->text(right_id);
  const uint64_t h = hash_text(right, hash_text(" ", hash_text(left)));
  const auto tag = static_cast<uint32_t>(h >> 32);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot slot = slots_[i];
    if (slot.rank < 0) return -1;
    if (slot.tag != tag) continue;
    const std::string_view m = merge(slot.rank);
    if (m.size() == left.size() + 1 + right.size() && m.starts_with(left) && m.ends_with(right) &&
        m[left.size()] == ' ') {
      return slot.rank;
    }
  }
}

void BpeEncoder::push_bigram(int32_t left, Work& work) const {
  if (left < 0) return;
  const int32_t right = work.symbols[left].next;
  if (right < 0) return;
  const int32_t left_id = work.symbols[left].id;
  const int32_t right_id = work.symbols[right].id;
  const int32_t rank = rank_of(left_id, right_id);
  if (rank < 0) return;
  work.queue.push_back({rank, left, right, left_id, right_id});
  std::push_heap(work.queue.begin(), work.queue.end(), Later{});
}

void BpeEncoder::encode(std::string_view piece, bool ignore_merges, std::vector<int32_t>& out,
                        Work& work) const {
  constexpr std::size_t kMaxCachedPiece = 64;
  constexpr std::size_t kMaxCacheEntries = 1 << 16;
  if (piece.empty()) return;
  const bool cacheable = piece.size() <= kMaxCachedPiece;
  if (cacheable) {
    const auto it = work.cache.find(piece);
    if (it != work.cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const std::size_t first = out.size();
  encode_uncached(piece, ignore_merges, out, work);
  if (cacheable && work.cache.size() < kMaxCacheEntries) {
    work.cache.emplace(
        piece, std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(first), out.end()));
  }
}

void BpeEncoder::encode_uncached(std::string_view piece, bool ignore_merges,
                                 std::vector<int32_t>& out, Work& work) const {
  if (ignore_merges) {
    bytes_to_symbols(piece, work.text);
    if (const auto id = vocab_->find(work.text)) {
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
  for (int32_t i = 0; i + 1 < n; ++i)
    push_bigram(i, work);

  while (!work.queue.empty()) {
    std::pop_heap(work.queue.begin(), work.queue.end(), Later{});
    const Work::Bigram bigram = work.queue.back();
    work.queue.pop_back();
    Work::Symbol& left = work.symbols[bigram.left];
    // Stale when either side has been merged since the pair was queued.
    if (left.id != bigram.left_id || left.next != bigram.right ||
        work.symbols[bigram.right].id != bigram.right_id) {
      continue;
    }
    Work::Symbol& right = work.symbols[bigram.right];
    // A rule whose result is not a token cannot produce one (llama.cpp would still merge
    // the text but then emit it byte by byte): skip it.
    work.text.assign(vocab_->text(left.id));
    work.text.append(vocab_->text(right.id));
    const auto result = vocab_->find(work.text);
    if (!result) continue;
    left.id = *result;
    left.next = right.next;
    if (right.next >= 0) work.symbols[right.next].prev = bigram.left;
    right.id = -1;
    push_bigram(left.prev, work);
    push_bigram(bigram.left, work);
  }
  for (int32_t i = 0; i >= 0; i = work.symbols[i].next)
    out.push_back(work.symbols[i].id);
}

} // namespace bitnet::tokenizer
