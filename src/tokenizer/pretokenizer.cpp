#include "tokenizer/pretokenizer.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>

#include "bitnet/error.hpp"

namespace bitnet::tokenizer {

namespace {

// \s and \S of the source patterns are written as the Unicode White_Space property, which
// Hugging Face tokenizers and llama.cpp use (PCRE2's UCP \s would also match U+180E).
constexpr std::string_view kLlama3Pattern =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))"
    R"(|[^\r\n\p{L}\p{N}]?\p{L}+)"
    R"(|\p{N}{1,3})"
    R"(| ?[^\p{White_Space}\p{L}\p{N}]+[\r\n]*)"
    R"(|\p{White_Space}*[\r\n]+)"
    R"(|\p{White_Space}+(?!\P{White_Space}))"
    R"(|\p{White_Space}+)";

// bitnet.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT list (llama-vocab.cpp, llm_tokenizer_bpe).
constexpr std::string_view kDefaultPatterns[] = {
    R"([\p{P}\$\+<=>\^~\|]+)",
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+)"
    R"(|\p{White_Space}+(?!\P{White_Space}))",
    R"(\p{N}+)",
    R"([0-9][0-9][0-9])",
};

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof buffer);
  return reinterpret_cast<const char*>(buffer);
}

} // namespace

struct Regex::Impl {
  pcre2_code* code = nullptr;
  ~Impl() { pcre2_code_free(code); }
};

Regex::Regex(std::string_view pattern) : impl_(std::make_unique<Impl>()) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
  if (impl_->code == nullptr) {
    throw Error(ErrorKind::invalid_argument, "pre-tokenizer regex does not compile at offset " +
                                                 std::to_string(error_offset) + ": " +
                                                 pcre2_message(error));
  }
  // Without JIT (unsupported CPU) the interpreter gives the same matches, only slower.
  pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);
}

Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;
Regex::~Regex() = default;

void Regex::split(std::string_view text, const std::vector<Span>& in,
                  std::vector<Span>& out) const {
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
      pcre2_match_data_create_from_pattern(impl_->code, nullptr), &pcre2_match_data_free);
  if (!match) throw std::bad_alloc();
  for (const Span& span : in) {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + span.offset);
    std::size_t pos = 0;
    std::size_t gap_start = 0;
    while (pos < span.length) {
      // The caller validated the UTF-8 once; checking it again per match would be quadratic.
      const int rc = pcre2_match(impl_->code, subject, span.length, pos, PCRE2_NO_UTF_CHECK,
                                 match.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        throw Error(ErrorKind::invalid_input, "pre-tokenizer regex failed at byte " +
                                                  std::to_string(span.offset + pos) + ": " +
                                                  pcre2_message(rc));
      }
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
      const std::size_t begin = ovector[0];
      const std::size_t end = ovector[1];
      if (end == begin) { // none of the patterns can match empty; guard against a hang anyway
        pos = begin + 1;
        while (pos < span.length && (static_cast<uint8_t>(subject[pos]) & 0xC0) == 0x80)
          ++pos;
        continue;
      }
      if (begin > gap_start) out.push_back({span.offset + gap_start, begin - gap_start});
      out.push_back({span.offset + begin, end - begin});
      pos = end;
      gap_start = end;
    }
    if (gap_start < span.length) {
      out.push_back({span.offset + gap_start, span.length - gap_start});
    }
  }
}

Splitter::Splitter(PreTokenizer kind) {
  if (kind == PreTokenizer::llama3) {
    regexes_.emplace_back(kLlama3Pattern);
  } else {
    for (const std::string_view pattern : kDefaultPatterns)
      regexes_.emplace_back(pattern);
  }
}

std::vector<Span> Splitter::split(std::string_view text) const {
  std::vector<Span> pieces;
  if (text.empty()) return pieces;
  pieces.push_back({0, text.size()});
  std::vector<Span> next;
  for (const Regex& regex : regexes_) {
    next.clear();
    next.reserve(pieces.size() * 2);
    regex.split(text, pieces, next);
    pieces.swap(next);
  }
  return pieces;
}

} // namespace bitnet::tokenizer
