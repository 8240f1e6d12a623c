#include "tokenizer/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bitnet/error.hpp"
#include "bitnet/utf8.hpp"
#include "tokenizer/bpe.hpp"
#include "tokenizer/byte_level.hpp"
#include "tokenizer/pretokenizer.hpp"
#include "tokenizer/spm.hpp"
#include "tokenizer/vocab.hpp"

namespace bitnet::tokenizer {

namespace {

constexpr int32_t kLlama3VocabSize = 128256;
constexpr int32_t kLlama3BeginOfText = 128000;

// Texts llama.cpp treats as end of generation besides eos (llm_load_vocab), in the order
// used to choose the end-of-turn token.
constexpr std::array<std::string_view, 7> kEogTexts = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "<|eom_id|>"};

bool is_special_type(TokenType type) {
  return type == TokenType::control || type == TokenType::user_defined ||
         type == TokenType::unknown;
}

// Finds special-token texts in input: the longest token starting at the leftmost position.
class SpecialMatcher {
public:
  void build(const Vocab& vocab) {
    for (int32_t id = 0; id < vocab.size(); ++id) {
      const std::string_view text = vocab.text(id);
      if (!is_special_type(vocab.type(id)) || text.empty()) continue;
      first_bytes_[static_cast<uint8_t>(text[0])] = true;
      if (text.size() == 1) {
        single_[static_cast<uint8_t>(text[0])] = id;
      } else {
        by_prefix_[prefix(text)].push_back(id);
      }
    }
    for (auto& [key, ids] : by_prefix_) {
      std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
        return vocab.text(a).size() > vocab.text(b).size();
      });
    }
  }

  // The id and length of the longest special token at text[pos], or {-1, 0}.
  std::pair<int32_t, std::size_t> match(const Vocab& vocab, std::string_view text,
                                        std::size_t pos) const {
    const auto first = static_cast<uint8_t>(text[pos]);
    if (!first_bytes_[first]) return {-1, 0};
    if (pos + 1 < text.size()) {
      const auto it = by_prefix_.find(prefix(text.substr(pos, 2)));
      if (it != by_prefix_.end()) {
        for (const int32_t id : it->second) {
          const std::string_view candidate = vocab.text(id);
          if (text.compare(pos, candidate.size(), candidate) == 0) return {id, candidate.size()};
        }
      }
    }
    const auto single = single_.find(first);
    if (single != single_.end()) return {single->second, 1};
    return {-1, 0};
  }

  bool empty() const { return by_prefix_.empty() && single_.empty(); }

private:
  static uint16_t prefix(std::string_view text) {
    return static_cast<uint16_t>((static_cast<uint8_t>(text[0]) << 8) |
                                 static_cast<uint8_t>(text[1]));
  }
  std::array<bool, 256> first_bytes_{};
  std::unordered_map<uint16_t, std::vector<int32_t>> by_prefix_;
  std::unordered_map<uint8_t, int32_t> single_;
};

std::vector<std::string_view> string_array(const gguf::Value& value, std::string_view key) {
  if (value.type() != gguf::ValueType::array || value.elem_type() != gguf::ValueType::string) {
    throw Error(ErrorKind::format, fmt::format("{}: expected an array of strings", key));
  }
  std::vector<std::string_view> out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i)
    out.push_back(value.string_at(i));
  return out;
}

const gguf::Value* optional_array(const gguf::File& file, std::string_view key,
                                  std::size_t expected) {
  const gguf::Value* value = file.find(key);
  if (value == nullptr) return nullptr;
  if (value->type() != gguf::ValueType::array) {
    throw Error(ErrorKind::format, fmt::format("{}: expected an array", key));
  }
  if (value->size() != expected) {
    throw Error(ErrorKind::format, fmt::format("{} has {} entries, expected {} (one per token)",
                                               key, value->size(), expected));
  }
  return value;
}

// The model must match the vocabulary's form: byte-level BPE spells a space 'Ġ' (U+0120),
// SentencePiece '▁' (U+2581). With the other model the text would come out wrong (a llama
// tokenizer on a BPE vocabulary prints 'Ġ'); a vocabulary with neither mark is accepted.
void check_vocabulary_form(const std::string& model, const std::vector<std::string_view>& tokens) {
  std::size_t bpe_spaces = 0, spm_spaces = 0;
  for (const std::string_view token : tokens) {
    bpe_spaces += token.find("\xC4\xA0") != std::string_view::npos;
    spm_spaces += token.find("\xE2\x96\x81") != std::string_view::npos;
  }
  const bool spm = model == "llama";
  if (spm ? (spm_spaces == 0 && bpe_spaces > 0) : (bpe_spaces == 0 && spm_spaces > 0))
    throw Error(ErrorKind::format,
                fmt::format("tokenizer.ggml.model '{}' ({}) does not match the vocabulary: {} "
                            "tokens spell a space as '{}', none as '{}'",
                            model, spm ? "SentencePiece" : "byte-level BPE",
                            spm ? bpe_spaces : spm_spaces, spm ? "Ġ" : "▁", spm ? "▁" : "Ġ"));
}

} // namespace

PreTokenizer pretokenizer_from_name(std::string_view name) {
  if (name == "llama3" || name == "llama-bpe" || name == "llama-v3") return PreTokenizer::llama3;
  if (name == "default") return PreTokenizer::default_;
  throw Error(
      ErrorKind::invalid_argument,
      fmt::format("unknown pre-tokenizer '{}' (llama3, llama-bpe, llama-v3, default)", name));
}

Options options_for(std::string_view pretokenizer) {
  Options o;
  if (!pretokenizer.empty()) o.pretokenizer = pretokenizer_from_name(pretokenizer);
  return o;
}

struct Tokenizer::Impl {
  enum class Model { bpe, spm };
  Model model = Model::bpe;
  Vocab vocab;
  std::unique_ptr<BpeEncoder> bpe;
  std::unique_ptr<SpmEncoder> spm;
  PreTokenizer pre = PreTokenizer::default_;
  std::unique_ptr<Splitter> splitter;
  bool ignore_merges = false;
  SpecialMatcher specials;
  int32_t bos = -1;
  int32_t eos = -1;
  std::optional<int32_t> eot;
  std::optional<int32_t> unk;
  std::vector<int32_t> eog; // sorted
  bool add_bos = true;
  bool add_space_prefix = true;

  void check_id(int32_t id) const {
    if (id < 0 || id >= vocab.size()) {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("token id {} is out of range [0, {})", id, vocab.size()));
    }
  }

  // Ids of a stretch of text that holds no special token.
  void encode_text(std::string_view text, bool after_special, std::vector<int32_t>& out,
                   BpeEncoder::Work& work) const {
    if (model == Model::spm) {
      std::string escaped;
      if (add_space_prefix && after_special) escaped = kSpmSpace;
      for (const char c : text) {
        if (c == ' ') {
          escaped += kSpmSpace;
        } else {
          escaped += c;
        }
      }
      spm->encode(escaped, out);
      return;
    }
    for (const Span& span : splitter->split(text)) {
      bpe->encode(text.substr(span.offset, span.length), ignore_merges, out, work);
    }
  }
};

namespace {

std::optional<int32_t> token_id_key(const gguf::File& file, std::string_view key, int32_t n_vocab) {
  const auto value = file.find_uint(key);
  if (!value) return std::nullopt;
  if (*value >= static_cast<uint64_t>(n_vocab)) {
    spdlog::warn("{} = {} is outside the vocabulary ({} tokens); ignored", key, *value, n_vocab);
    return std::nullopt;
  }
  return static_cast<int32_t>(*value);
}

} // namespace

Tokenizer Tokenizer::from_gguf(const gguf::File& file, const Options& options) {
  auto impl = std::make_unique<Impl>();
  const auto model_name = file.find_string("tokenizer.ggml.model");
  if (!model_name) throw Error(ErrorKind::format, "tokenizer.ggml.model is missing");
  if (*model_name == "gpt2") {
    impl->model = Impl::Model::bpe;
  } else if (*model_name == "llama") {
    impl->model = Impl::Model::spm;
  } else {
    throw Error(
        ErrorKind::unsupported,
        fmt::format("tokenizer.ggml.model '{}' is not supported (gpt2, llama)", *model_name));
  }

  const gguf::Value* tokens_value = file.find("tokenizer.ggml.tokens");
  if (tokens_value == nullptr) throw Error(ErrorKind::format, "tokenizer.ggml.tokens is missing");
  const std::vector<std::string_view> tokens = string_array(*tokens_value, "tokenizer.ggml.tokens");
  if (tokens.empty() || tokens.size() > static_cast<std::size_t>(INT32_MAX)) {
    throw Error(ErrorKind::format,
                fmt::format("tokenizer.ggml.tokens has {} entries", tokens.size()));
  }
  check_vocabulary_form(*model_name, tokens);
  const auto* types = optional_array(file, "tokenizer.ggml.token_type", tokens.size());
  const auto* scores = optional_array(file, "tokenizer.ggml.scores", tokens.size());
  std::size_t n_bytes = 0;
  for (const std::string_view token : tokens)
    n_bytes += token.size();
  Vocab& vocab = impl->vocab;
  vocab.reserve(tokens.size(), n_bytes);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const int64_t type = types ? types->at(i).as_int() : 1;
    const auto token_type =
        type >= 0 && type <= 6 ? static_cast<TokenType>(type) : TokenType::undefined;
    vocab.add(tokens[i], token_type, scores ? static_cast<float>(scores->at(i).as_float()) : 0.0f);
  }
  vocab.index();
  const int32_t n_vocab = vocab.size();

  const bool spm = impl->model == Impl::Model::spm;
  impl->bos = token_id_key(file, "tokenizer.ggml.bos_token_id", n_vocab)
                  .value_or(spm && n_vocab > 1 ? 1 : -1);
  impl->eos = token_id_key(file, "tokenizer.ggml.eos_token_id", n_vocab)
                  .value_or(spm && n_vocab > 2 ? 2 : -1);
  impl->unk = token_id_key(file, "tokenizer.ggml.unknown_token_id", n_vocab);
  if (!impl->unk && spm) impl->unk = 0;
  impl->eot = token_id_key(file, "tokenizer.ggml.eot_token_id", n_vocab);
  for (const std::string_view text : kEogTexts) {
    if (const auto id = vocab.find(text)) {
      if (!impl->eot && text != "<|eom_id|>") impl->eot = *id;
      impl->eog.push_back(*id);
    }
  }
  if (impl->eos >= 0) impl->eog.push_back(impl->eos);
  if (impl->eot) impl->eog.push_back(*impl->eot);
  if (const auto eom = token_id_key(file, "tokenizer.ggml.eom_token_id", n_vocab)) {
    impl->eog.push_back(*eom);
  }
  std::sort(impl->eog.begin(), impl->eog.end());
  impl->eog.erase(std::unique(impl->eog.begin(), impl->eog.end()), impl->eog.end());
  impl->add_bos = file.find_bool("tokenizer.ggml.add_bos_token").value_or(true);
  impl->add_space_prefix = file.find_bool("tokenizer.ggml.add_space_prefix").value_or(true);
  impl->specials.build(vocab);

  if (spm) {
    impl->spm = std::make_unique<SpmEncoder>(vocab, impl->unk);
  } else {
    const gguf::Value* merges_value = file.find("tokenizer.ggml.merges");
    if (merges_value == nullptr) {
      throw Error(ErrorKind::format, "tokenizer.ggml.merges is missing (required for gpt2)");
    }
    impl->bpe =
        std::make_unique<BpeEncoder>(vocab, string_array(*merges_value, "tokenizer.ggml.merges"));
    if (options.pretokenizer) {
      impl->pre = *options.pretokenizer;
    } else if (const auto pre = file.find_string("tokenizer.ggml.pre")) {
      try {
        impl->pre = pretokenizer_from_name(*pre);
      } catch (const Error&) {
        throw Error(ErrorKind::unsupported,
                    fmt::format("tokenizer.ggml.pre '{}' is not supported (llama-bpe, llama3, "
                                "llama-v3, default); choose one with --pretokenizer",
                                *pre));
      }
    } else if (n_vocab == kLlama3VocabSize &&
               vocab.find("<|begin_of_text|>") == kLlama3BeginOfText) {
      // The official 2B-4T file has no pre key; bitnet.cpp then falls back to "default",
      // which splits text unlike the model was trained (docs/gguf-format.md §6.2).
      impl->pre = PreTokenizer::llama3;
      spdlog::info("tokenizer.ggml.pre is missing but the vocabulary is Llama-3's: using the "
                   "llama3 pre-tokenizer (bitnet.cpp uses 'default'; --pretokenizer default "
                   "reproduces it)");
    } else {
      impl->pre = PreTokenizer::default_;
      spdlog::warn("tokenizer.ggml.pre is missing: using the 'default' pre-tokenizer, as "
                   "bitnet.cpp does");
    }
    impl->ignore_merges = impl->pre == PreTokenizer::llama3;
    impl->splitter = std::make_unique<Splitter>(impl->pre);
    spdlog::debug("tokenizer: gpt2, {} tokens, {} merges, pre-tokenizer {}", n_vocab,
                  impl->bpe->n_merges(), impl->pre == PreTokenizer::llama3 ? "llama3" : "default");
  }
  return Tokenizer(std::move(impl));
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos,
                                       bool parse_special) const {
  if (const std::size_t bad = utf8_find_invalid(text); bad != std::string_view::npos) {
    throw Error(ErrorKind::invalid_input,
                fmt::format("text is not valid UTF-8: invalid UTF-8 at byte {}", bad));
  }
  const Impl& impl = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos && impl.bos >= 0) out.push_back(impl.bos);
  BpeEncoder::Work work;
  bool after_special = true;
  std::size_t start = 0;
  if (parse_special && !impl.specials.empty()) {
    for (std::size_t pos = 0; pos < text.size();) {
      const auto [id, length] = impl.specials.match(impl.vocab, text, pos);
      if (id < 0) {
        ++pos;
        continue;
      }
      if (pos > start) {
        impl.encode_text(text.substr(start, pos - start), after_special, out, work);
      }
      out.push_back(id);
      after_special = true;
      pos += length;
      start = pos;
    }
  }
  if (start < text.size()) impl.encode_text(text.substr(start), after_special, out, work);
  return out;
}

std::string Tokenizer::piece(int32_t id, bool render_special) const {
  impl_->check_id(id);
  const Vocab& vocab = impl_->vocab;
  const std::string_view text = vocab.text(id);
  switch (vocab.type(id)) {
  case TokenType::control:
  case TokenType::unknown:
    return render_special ? std::string(text) : std::string();
  case TokenType::user_defined:
    return std::string(text);
  case TokenType::normal:
    if (impl_->model == Impl::Model::bpe) return symbols_to_bytes(text);
    {
      std::string out;
      for (std::size_t pos = 0; pos < text.size();) {
        if (text.compare(pos, kSpmSpace.size(), kSpmSpace) == 0) {
          out += ' ';
          pos += kSpmSpace.size();
        } else {
          out += text[pos++];
        }
      }
      return out;
    }
  case TokenType::byte:
    if (impl_->model == Impl::Model::spm && text.size() == 6 && text.starts_with("<0x")) {
      unsigned value = 0;
      const auto [end, ec] = std::from_chars(text.data() + 3, text.data() + 5, value, 16);
      if (ec == std::errc() && end == text.data() + 5)
        return std::string(1, static_cast<char>(value));
    }
    return std::string();
  default:
    return std::string();
  }
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  // SentencePiece: drop the space the encoder put before the first word (llama_detokenize
  // strips it from the first piece after a leading BOS).
  bool strip_space = impl_->model == Impl::Model::spm && impl_->add_space_prefix;
  for (const int32_t id : ids) {
    std::string p = piece(id, render_special);
    if (strip_space && impl_->vocab.type(id) != TokenType::control) {
      if (p.starts_with(' ')) p.erase(0, 1);
      strip_space = false;
    }
    out += p;
  }
  return out;
}

int32_t Tokenizer::n_vocab() const {
  return impl_->vocab.size();
}
int32_t Tokenizer::bos() const {
  return impl_->bos;
}
int32_t Tokenizer::eos() const {
  return impl_->eos;
}
std::optional<int32_t> Tokenizer::eot() const {
  return impl_->eot;
}
bool Tokenizer::is_eog(int32_t id) const {
  return std::binary_search(impl_->eog.begin(), impl_->eog.end(), id);
}
bool Tokenizer::add_bos_default() const {
  return impl_->add_bos;
}
std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  return impl_->vocab.find(text);
}
PreTokenizer Tokenizer::pretokenizer() const {
  return impl_->pre;
}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tokenizer_->piece(id, render_special_);
  // Hold back a trailing lead byte and its continuation bytes while the sequence is short.
  const std::size_t n = pending_.size();
  std::size_t lead = n;
  for (std::size_t back = 1; back <= std::min<std::size_t>(3, n); ++back) {
    const auto c = static_cast<uint8_t>(pending_[n - back]);
    if ((c & 0xC0) != 0x80) {
      lead = n - back;
      break;
    }
  }
  std::size_t keep = 0;
  if (lead < n) {
    const auto c = static_cast<uint8_t>(pending_[lead]);
    const std::size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 1;
    if (c < 0xF5 && n - lead < need) keep = n - lead;
  }
  std::string out = pending_.substr(0, n - keep);
  pending_.erase(0, n - keep);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

} // namespace bitnet::tokenizer
