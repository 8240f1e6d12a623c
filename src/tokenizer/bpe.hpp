// Byte-level BPE (tokenizer.ggml.model = gpt2): merges applied by rank, lowest first, ties
// to the leftmost pair (llama.cpp llm_tokenizer_bpe_session), with a priority queue over a
// linked list of symbols so a long piece costs O(n log n).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/vocab.hpp"

namespace bitnet::tokenizer {

class BpeEncoder {
public:
  // `merges` are "left right" strings, rank = index. Only the merge strings are hashed
  // here; pairs are resolved when encoding meets them, which keeps loading 280k merges fast.
  // Throws Error(format) when a byte has no symbol in the vocabulary.
  BpeEncoder(const Vocab& vocab, const std::vector<std::string_view>& merges);

  // Scratch buffers reused across the pieces of one encode() call.
  struct Work {
    struct Symbol {
      int32_t id;
      int32_t prev;
      int32_t next;
    };
    struct Bigram {
      int32_t rank;
      int32_t left;
      int32_t right;
      int32_t left_id;
      int32_t right_id;
    };
    std::string text;
    std::vector<Symbol> symbols;
    std::vector<Bigram> queue;
    // Ids of short pre-tokens already seen in this call (English repeats words), keyed by
    // views into the text being encoded, which outlives the Work.
    std::unordered_map<std::string_view, std::vector<int32_t>> cache;
  };

  // Appends the ids of one pre-token (raw bytes). With ignore_merges, a pre-token that is a
  // token as a whole is that token (Llama-3).
  void encode(std::string_view piece, bool ignore_merges, std::vector<int32_t>& out,
              Work& work) const;
  std::size_t n_merges() const { return offsets_.size() - 1; }

private:
  struct Slot {
    int32_t rank; // -1 when empty
    uint32_t tag; // high half of the merge string's hash
  };
  std::string_view merge(int32_t rank) const {
    return std::string_view(texts_).substr(offsets_[rank], offsets_[rank + 1] - offsets_[rank]);
  }
  // Rank of the rule "left right", or -1.
  int32_t rank_of(int32_t left_id, int32_t right_id) const;
  void push_bigram(int32_t left, Work& work) const;
  void encode_uncached(std::string_view piece, bool ignore_merges, std::vector<int32_t>& out,
                       Work& work) const;

  const Vocab* vocab_;
  std::array<int32_t, 256> byte_ids_{};
  std::string texts_;                // merge strings, concatenated
  std::vector<std::size_t> offsets_; // rank → start in texts_, plus the end
  std::vector<Slot> slots_;          // open addressing; size is a power of two
};

} // namespace bitnet::tokenizer
