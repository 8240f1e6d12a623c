// A model's tokenizer: byte-level BPE (Llama-3 or bitnet.cpp's "default" pre-tokenizer) or
// SentencePiece, as its GGUF metadata describes it. Model::tokenizer() gives the loaded
// model's; Tokenizer::load reads one from any GGUF file, even one this build cannot run.
// Copies share one tokenizer and may be used from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

namespace detail {
struct Access; // the library's own door to the state behind this API (src/util/access.hpp)
}
namespace tokenizer {
class Tokenizer; // src/tokenizer
}

class Tokenizer {
public:
  // The tokenizer of the GGUF file at `path`. `pretokenizer` as ModelOptions::pretokenizer.
  // Throws Error(io|format|unsupported) naming the key when the metadata is unusable.
  static Tokenizer load(const std::string& path, const std::string& pretokenizer = "");

  // Text → ids. The text must be valid UTF-8 (else Error(invalid_input)). add_bos prepends
  // bos() when the vocabulary has one; parse_special matches the text of special tokens
  // (e.g. <|eot_id|>) as those tokens, else it is plain text.
  std::vector<int32_t> tokenize(std::string_view text, bool add_bos,
                                bool parse_special = true) const;
  // Ids → text, special tokens rendered as their text unless !render_special.
  std::string detokenize(std::span<const int32_t> ids, bool render_special = true) const;
  // The raw bytes of one token (may be part of a UTF-8 character). Special tokens give ""
  // unless render_special. Error(invalid_argument) for an id outside [0, n_vocab()).
  std::string piece(int32_t id, bool render_special = false) const;

  int32_t n_vocab() const;
  int32_t bos() const; // -1 when the vocabulary has none
  int32_t eos() const; // -1 when the vocabulary has none
  std::optional<int32_t> eot() const;
  bool is_eog(int32_t id) const; // ends generation: eos, eot, <|end_of_text|>, <|eom_id|>, ...
  bool add_bos_default() const;  // tokenizer.ggml.add_bos_token (default true)
  std::optional<int32_t> find_token(std::string_view text) const; // the id of a token's text
  std::string pretokenizer() const;                               // "llama3" | "default"

private:
  friend struct detail::Access;
  explicit Tokenizer(std::shared_ptr<const tokenizer::Tokenizer> impl);
  std::shared_ptr<const tokenizer::Tokenizer> impl_;
};

} // namespace bitnet
