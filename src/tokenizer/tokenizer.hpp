// Tokenizers built from GGUF metadata: byte-level BPE (tokenizer.ggml.model = gpt2) with the
// Llama-3 or bitnet.cpp "default" pre-tokenizer, and SentencePiece (model = llama).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.hpp"

namespace bitnet::tokenizer {

enum class PreTokenizer { llama3, default_ };
// "llama3" (aliases llama-bpe, llama-v3) or "default"; throws Error(invalid_argument).
PreTokenizer pretokenizer_from_name(std::string_view name);

struct Options {
  std::optional<PreTokenizer> pretokenizer; // overrides tokenizer.ggml.pre
};
// Options overriding the pre-tokenizer by name ("" = as the file says); throws as
// pretokenizer_from_name.
Options options_for(std::string_view pretokenizer);

class Tokenizer {
public:
  // Throws Error(format/unsupported) naming the key when the metadata is unusable.
  static Tokenizer from_gguf(const gguf::File& file, const Options& options = {});
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Text must be valid UTF-8 (else Error(invalid_input)). parse_special: the text of
  // control, user-defined and unknown tokens is matched as that token (leftmost, longest
  // first); otherwise it is plain text. add_bos prepends bos() when the vocabulary has one.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special = true) const;
  // Raw bytes of one token (byte tokens give their byte; may be partial UTF-8). Control and
  // unknown tokens give "" unless render_special, which gives their text (llama.cpp
  // token_to_piece): generated text is streamed without them. Error(invalid_argument) for
  // an id outside [0, n_vocab).
  std::string piece(int32_t id, bool render_special = false) const;
  // The inverse of encode(): the pieces concatenated, special tokens rendered as their text
  // by default. SentencePiece: the space the encoder put before the first word (after any
  // leading control tokens such as BOS) is removed.
  std::string decode(std::span<const int32_t> ids, bool render_special = true) const;

  int32_t n_vocab() const;
  int32_t bos() const; // -1 when the vocabulary has none
  int32_t eos() const; // -1 when the vocabulary has none
  std::optional<int32_t> eot() const;
  bool is_eog(int32_t id) const; // eos, eot, <|end_of_text|>, <|eom_id|>, ...
  bool add_bos_default() const;  // tokenizer.ggml.add_bos_token (default true)
  std::optional<int32_t> find_token(std::string_view text) const;
  PreTokenizer pretokenizer() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
};

// Turns a stream of token ids into text that never ends inside a UTF-8 sequence: bytes of
// an incomplete character are held until it completes (or flushed as-is at the end).
// Bytes that can never complete a character are passed through unchanged.
class StreamDecoder {
public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool render_special = false)
      : tokenizer_(&tokenizer), render_special_(render_special) {}
  std::string push(int32_t id);
  std::string flush();

private:
  const Tokenizer* tokenizer_;
  bool render_special_;
  std::string pending_;
};

struct Message {
  std::string role; // system | user | assistant
  std::string content;
};

// Chat formats: "bitnet" (bitnet.cpp's rendering of the 2B-4T template: "System: {c}",
// "User: {c}<|eot_id|>Assistant: ", assistant content raw) and "llama3" (header format,
// content trimmed). Chosen from tokenizer.chat_template or by name. The text never holds
// BOS: encode it with add_bos = Tokenizer::add_bos_default() and parse_special = true.
class ChatTemplate {
public:
  // "llama3" when the template has <|start_header_id|> and <|end_header_id|>, else "bitnet".
  static ChatTemplate from_gguf(const gguf::File& file);
  static ChatTemplate by_name(std::string_view name); // Error(invalid_argument) if unknown
  const std::string& name() const { return name_; }
  // Text for `messages`; with add_generation_prompt, ends with the assistant prefix.
  std::string render(std::span<const Message> messages, bool add_generation_prompt) const;

private:
  explicit ChatTemplate(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

} // namespace bitnet::tokenizer
