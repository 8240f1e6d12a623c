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
  // `merges` are "left right" strings, rank = index. Merges whose parts or result are not
  // tokens can never produce a token and are skipped. Throws Error(format) when a byte has
  // no symbol in the vocabulary.
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
      int32_t result;
    };
    std::string symbols_text;
    std::vector<Symbol> symbols;
    std::vector<Bigram> queue;
  };

  // Appends the ids of one pre-token (raw bytes). With ignore_merges, a pre-token that is a
  // token as a whole is that token (Llama-3).
  void encode(std::string_view piece, bool ignore_merges, std::vector<int32_t>& out,
              Work& work) const;
  std::size_t n_merges() const { return merges_.size(); }

private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  void push_bigram(int32_t left, Work& work) const;

  const Vocab* vocab_;
  std::array<int32_t, 256> byte_ids_{};
  std::unordered_map<uint64_t, Merge> merges_;
};

} // namespace bitnet::tokenizer
