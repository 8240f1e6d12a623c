// Pre-tokenizers: split text into the pieces BPE runs on, with PCRE2 (UTF + UCP, JIT) so
// \p{L}, \p{N}, \p{P} and White_Space follow the Unicode standard.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.hpp"

namespace bitnet::tokenizer {

struct Span {
  std::size_t offset = 0;
  std::size_t length = 0;
};

// One compiled pattern.
class Regex {
public:
  explicit Regex(std::string_view pattern);
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  ~Regex();

  // Splits every input span into its matches and the unmatched gaps between them, keeping
  // both in order (llama.cpp's unicode_regex_split). Each span is matched as a subject of
  // its own, so look-ahead stops at its end. `text` must be valid UTF-8.
  void split(std::string_view text, const std::vector<Span>& in, std::vector<Span>& out) const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The regex sequence of a pre-tokenizer:
// (docs/gguf-format.md §6.2):
// - llama3: the Llama-3 pattern with llama.cpp's case-insensitive contractions;
// - default_: bitnet.cpp's fallback list, each regex splitting the previous one's pieces.
class Splitter {
public:
  explicit Splitter(PreTokenizer kind);
  std::vector<Span> split(std::string_view text) const;

private:
  std::vector<Regex> regexes_;
};

} // namespace bitnet::tokenizer
