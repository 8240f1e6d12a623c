// Vocabularies for synthetic models: HF tokenizer.json import and the built-in BPE.
#include "synth/vocab.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bitnet/error.hpp"
#include "tokenizer/byte_level.hpp"
#include "bitnet/utf8.hpp"

namespace bitnet::synth {

namespace {

constexpr float kAddedTokenScore = -1000.0f; // what the BitNet converter gives added tokens
// More id holes than this in a tokenizer.json is taken as a corrupt file, not padded.
constexpr std::size_t kMaxIdHoles = 65536;
constexpr std::size_t kBuiltinMaxMerges = 400;

// Training text for the built-in BPE: plain English so the merges form common words.
constexpr std::string_view kBuiltinText =
    "The quick brown fox jumps over the lazy dog. It was the best of times, and it was the "
    "worst of times; the people in the town spoke of little else. When the sun rose over the "
    "hills, the farmers walked out into their fields, and the children ran down to the river "
    "to watch the boats go by. A small model can still learn that words are made of letters, "
    "that letters make syllables, and that the most common pieces of a language are worth a "
    "token of their own. This is a synthetic model: its weights are random numbers, so the "
    "text it writes has no meaning, but every part of the file is real. The reader must check "
    "the header, the metadata and the tensors; the engine must load the weights, run the "
    "layers and sample the next token. There is a time for speed and a time for care, and "
    "the best programs are written with both in mind. In the evening the wind turned cold, "
    "the lights came on in the windows, and the streets were quiet again. She said that she "
    "would write to him in the spring, and he said that he would wait for her letter. They "
    "had known each other since they were young, and they knew that nothing would change "
    "between them. The house stood at the end of the road, with a garden in front and a "
    "small orchard behind it, where the apples were ready in the first weeks of autumn. "
    "Numbers such as 1, 2, 3, 10, 100 and 2024 appear in text too, as do questions: what is "
    "the answer? Where did they go? How many are there? Nobody knew, but everyone had an "
    "opinion, and the discussion went on until late in the night.";

enum class CharClass { letter, digit, space, other };

CharClass classify(char c) {
  const auto u = static_cast<unsigned char>(c);
  if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')) return CharClass::letter;
  if (u >= '0' && u <= '9') return CharClass::digit;
  if (u == ' ' || u == '\t' || u == '\n' || u == '\r' || u == '\f' || u == '\v') {
    return CharClass::space;
  }
  return CharClass::other;
}

// GPT-2 style pre-split of ASCII text: " ?letters | ?digits | ?other+|\s+" where a run of
// spaces leaves its last space to the word that follows it.
std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    if (classify(text[i]) == CharClass::space) {
      std::size_t j = i;
      while (j < text.size() && classify(text[j]) == CharClass::space)
        ++j;
      if (j == text.size() || text[j - 1] != ' ') {
        words.push_back(text.substr(i, j - i));
        i = j;
        continue;
      }
      if (j - 1 > i) words.push_back(text.substr(i, j - 1 - i));
      start = j - 1; // the last space prefixes the word that follows
      i = j;
    }
    const CharClass cls = classify(text[i]);
    while (i < text.size() && classify(text[i]) == cls)
      ++i;
    words.push_back(text.substr(start, i - start));
  }
  return words;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::io, fmt::format("cannot open '{}'", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(ErrorKind::io, fmt::format("cannot read '{}'", path));
  return ss.str();
}

using Json = nlohmann::json;

[[noreturn]] void bad_json(const std::string& what) {
  throw Error(ErrorKind::invalid_input, what);
}

// What a tokenizer.json holds that a GGUF vocabulary needs.
struct HfTokenizer {
  struct Token {
    std::string text;
    int64_t id = -1;
    bool special = false;
  };
  std::optional<std::string> model_type;          // model.type
  std::optional<std::vector<Token>> vocab;        // model.vocab: text → id
  std::optional<std::vector<std::string>> merges; // model.merges: "a b" or ["a", "b"]
  std::vector<Token> added;                       // added_tokens: {id, content, special}
};

// tokenizer.json read from nlohmann's SAX events: the 9 MB Llama-3 file has 128k vocabulary
// entries and 280k merges, and building a document of it first takes four times as long as
// the parse itself. Only the fields above are kept; everything else is skipped.
class HfTokenizerReader : public nlohmann::json_sax<Json> {
public:
  explicit HfTokenizerReader(HfTokenizer& out) : out_(out) {}

  bool start_object(std::size_t) override { return open(true); }
  bool start_array(std::size_t) override { return open(false); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    frames_.back().key = std::move(k);
    return true;
  }
  bool string(string_t& v) override {
    switch (role()) {
    case Role::model:
      if (key() == "type") out_.model_type = std::move(v);
      break;
    case Role::merges:
      out_.merges->push_back(std::move(v));
      break;
    case Role::merge_pair:
      pair_.push_back(std::move(v));
      break;
    case Role::added_token:
      if (key() == "content") {
        token_.text = std::move(v);
        token_text_ = true;
      }
      break;
    default:
      return scalar("a string");
    }
    return true;
  }
  bool number_integer(number_integer_t v) override { return id(v); }
  bool number_unsigned(number_unsigned_t v) override {
    return id(static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX)));
  }
  bool number_float(number_float_t, const string_t&) override { return scalar("a fraction"); }
  bool boolean(bool v) override {
    if (role() != Role::added_token) return scalar("a boolean");
    if (key() == "special") token_.special = v;
    return true;
  }
  bool null() override { return scalar("null"); }
  bool binary(binary_t&) override { return scalar("binary data"); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    bad_json(fmt::format("JSON: {}", e.what()));
  }

private:
  enum class Role { root, model, vocab, merges, merge_pair, added, added_token, other };
  struct Frame {
    Role role;
    std::string key; // the member being read, in an object
  };

  Role role() const { return frames_.back().role; }
  const std::string& key() const { return frames_.back().key; }

  // The role of a container from where it sits.
  bool open(bool object) {
    Role r = Role::other;
    if (frames_.empty()) {
      r = object ? Role::root : Role::other;
    } else if (role() == Role::root && key() == "model" && object) {
      r = Role::model;
    } else if (role() == Role::root && key() == "added_tokens" && !object) {
      r = Role::added;
    } else if (role() == Role::model && key() == "vocab" && object) {
      r = Role::vocab;
      out_.vocab.emplace();
    } else if (role() == Role::model && key() == "merges" && !object) {
      r = Role::merges;
      out_.merges.emplace();
    } else if (role() == Role::merges && !object) {
      r = Role::merge_pair;
      pair_.clear();
    } else if (role() == Role::added && object) {
      r = Role::added_token;
      token_ = {};
      token_id_ = token_text_ = false;
    } else if (role() == Role::vocab || role() == Role::merges || role() == Role::merge_pair) {
      scalar(object ? "an object" : "an array");
    }
    frames_.push_back({r, {}});
    return true;
  }

  bool close() {
    const Role r = role();
    frames_.pop_back();
    if (r == Role::merge_pair) {
      if (pair_.size() != 2) merge_error();
      out_.merges->push_back(pair_[0] + " " + pair_[1]);
    } else if (r == Role::added_token) {
      if (!token_id_ || !token_text_)
        bad_json(fmt::format("added_tokens: entry {} lacks its id or content", out_.added.size()));
      out_.added.push_back(std::move(token_));
    }
    return true;
  }

  bool id(int64_t v) {
    if (role() == Role::vocab) {
      out_.vocab->push_back({key(), v, false});
    } else if (role() == Role::added_token) {
      if (key() == "id") {
        token_.id = v;
        token_id_ = true;
      }
    } else {
      return scalar("a number");
    }
    return true;
  }

  // A value the fields we read cannot hold; elsewhere any value is fine.
  bool scalar(const char* what) {
    switch (role()) {
    case Role::vocab:
      bad_json(fmt::format("model.vocab: '{}' has {} for its id", key(), what));
    case Role::merges:
    case Role::merge_pair:
      merge_error();
    case Role::model:
      if (key() == "type") bad_json(fmt::format("model.type is {}", what));
      return true;
    default:
      return true;
    }
  }

  [[noreturn]] void merge_error() const {
    bad_json(fmt::format("model.merges: merge {} is neither \"a b\" nor [\"a\", \"b\"]",
                         out_.merges->size()));
  }

  HfTokenizer& out_;
  std::vector<Frame> frames_;
  std::vector<std::string> pair_;
  HfTokenizer::Token token_; // the added token being read
  bool token_id_ = false;
  bool token_text_ = false;
};

HfTokenizer read_hf_tokenizer(const std::string& text) {
  HfTokenizer t;
  HfTokenizerReader reader(t);
  Json::sax_parse(text, &reader);
  if (!t.model_type || !t.vocab || !t.merges)
    bad_json("expected model.type, model.vocab and model.merges");
  return t;
}

// The token text of a tokenizer_config.json bos_token/eos_token entry (a string, or an
// object with "content"), if any.
std::optional<std::string> config_token(const Json& config, const char* key) {
  const auto v = config.find(key);
  if (v == config.end() || v->is_null()) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  const auto content = v->is_object() ? v->find("content") : v->end();
  if (content != v->end() && content->is_string()) return content->get<std::string>();
  throw Error(ErrorKind::invalid_input,
              fmt::format("tokenizer_config.json: '{}' is neither a string nor an object", key));
}

Vocab parse_hf_tokenizer(HfTokenizer&& hf, const std::string& path) {
  if (*hf.model_type != "BPE") {
    throw Error(ErrorKind::invalid_input,
                fmt::format("{}: model.type is '{}', expected 'BPE'", path, *hf.model_type));
  }

  struct Entry {
    int64_t id;
    const std::string* text;
    TokenType type;
  };
  std::vector<Entry> entries;
  for (const HfTokenizer::Token& t : *hf.vocab) {
    entries.push_back({t.id, &t.text, TokenType::normal});
  }
  const std::size_t n_base = entries.size();
  for (const HfTokenizer::Token& t : hf.added) {
    entries.push_back({t.id, &t.text, t.special ? TokenType::control : TokenType::user_defined});
  }
  if (entries.empty()) throw Error(ErrorKind::invalid_input, path + ": empty vocabulary");

  int64_t max_id = -1;
  for (const Entry& e : entries) {
    if (e.id < 0) {
      throw Error(ErrorKind::invalid_input,
                  fmt::format("{}: token '{}' has negative id {}", path, *e.text, e.id));
    }
    max_id = std::max(max_id, e.id);
  }
  const auto n = static_cast<std::size_t>(max_id) + 1;
  if (n > entries.size() + kMaxIdHoles) {
    throw Error(ErrorKind::invalid_input,
                fmt::format("{}: largest token id {} leaves too many unused ids for {} tokens",
                            path, max_id, entries.size()));
  }

  Vocab vocab;
  vocab.tokens.resize(n);
  vocab.scores.assign(n, kAddedTokenScore);
  vocab.types.assign(n, TokenType::user_defined);
  std::vector<bool> seen(n, false);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    const auto id = static_cast<std::size_t>(e.id);
    // An added token may restate a vocabulary entry (same id); a clash within one list is an error.
    const bool restates_vocab = i >= n_base && seen[id] && vocab.types[id] == TokenType::normal;
    if (seen[id] && !restates_vocab) {
      throw Error(ErrorKind::invalid_input, fmt::format("{}: token id {} used twice", path, id));
    }
    seen[id] = true;
    vocab.tokens[id] = *e.text;
    vocab.types[id] = e.type;
    vocab.scores[id] = e.type == TokenType::normal ? 0.0f : kAddedTokenScore;
  }
  for (std::size_t id = 0; id < n; ++id) {
    if (!seen[id]) vocab.tokens[id] = fmt::format("[PAD{}]", id);
  }

  vocab.merges = std::move(*hf.merges);
  return vocab;
}

std::optional<uint32_t> find_id(const std::unordered_map<std::string_view, uint32_t>& ids,
                                const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  const auto it = ids.find(*text);
  if (it == ids.end()) return std::nullopt;
  return it->second;
}

} // namespace

void Vocab::pad_to(std::size_t n) {
  if (n < tokens.size()) {
    throw Error(
        ErrorKind::invalid_argument,
        fmt::format("vocabulary has {} tokens, more than the {} required", tokens.size(), n));
  }
  for (std::size_t id = tokens.size(); id < n; ++id) {
    tokens.push_back(fmt::format("[PAD{}]", id));
    scores.push_back(kAddedTokenScore);
    types.push_back(TokenType::user_defined);
  }
}

std::string byte_symbol(uint8_t b) {
  std::string out;
  append_utf8(out, tokenizer::byte_to_code_point(b));
  return out;
}

std::vector<uint8_t> byte_symbol_order() {
  // Bytes that stand for themselves come first, then the remapped ones ascending.
  const auto printable = [](unsigned b) {
    return tokenizer::byte_to_code_point(static_cast<uint8_t>(b)) == b;
  };
  std::vector<uint8_t> order;
  for (unsigned b = 0; b < 256; ++b) {
    if (printable(b)) order.push_back(static_cast<uint8_t>(b));
  }
  for (unsigned b = 0; b < 256; ++b) {
    if (!printable(b)) order.push_back(static_cast<uint8_t>(b));
  }
  return order;
}

const std::vector<std::string>& llama3_special_tokens() {
  static const std::vector<std::string> kTokens = {
      "<|begin_of_text|>",
      "<|end_of_text|>",
      "<|reserved_special_token_0|>",
      "<|reserved_special_token_1|>",
      "<|reserved_special_token_2|>",
      "<|reserved_special_token_3|>",
      "<|start_header_id|>",
      "<|end_header_id|>",
      "<|reserved_special_token_4|>",
      "<|eot_id|>",
  };
  return kTokens;
}

std::vector<std::string> learn_merges(std::string_view text, std::size_t max_merges) {
  // Each distinct pre-split word as a sequence of byte symbols, with its count.
  std::map<std::string_view, int64_t> word_counts;
  for (std::string_view w : split_words(text))
    ++word_counts[w];
  std::vector<std::pair<std::vector<std::string>, int64_t>> words;
  for (const auto& [w, count] : word_counts) {
    std::vector<std::string> symbols;
    for (char c : w)
      symbols.push_back(byte_symbol(static_cast<uint8_t>(c)));
    words.emplace_back(std::move(symbols), count);
  }

  std::vector<std::string> merges;
  while (merges.size() < max_merges) {
    std::map<std::pair<std::string, std::string>, int64_t> pair_counts; // ordered: ties → smallest
    for (const auto& [symbols, count] : words) {
      for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
        pair_counts[{symbols[i], symbols[i + 1]}] += count;
      }
    }
    const std::pair<std::string, std::string>* best = nullptr;
    int64_t best_count = 1; // a pair seen once is not worth a token
    for (const auto& [pair, count] : pair_counts) {
      if (count > best_count) {
        best = &pair;
        best_count = count;
      }
    }
    if (best == nullptr) break;
    const auto [left, right] = *best;
    merges.push_back(left + " " + right);
    for (auto& [symbols, count] : words) {
      std::vector<std::string> merged;
      for (std::size_t i = 0; i < symbols.size(); ++i) {
        if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
          merged.push_back(left + right);
          ++i;
        } else {
          merged.push_back(symbols[i]);
        }
      }
      symbols = std::move(merged);
    }
  }
  return merges;
}

Vocab builtin_vocab() {
  Vocab vocab;
  for (uint8_t b : byte_symbol_order()) {
    vocab.tokens.push_back(byte_symbol(b));
    vocab.types.push_back(TokenType::normal);
    vocab.scores.push_back(0.0f);
  }
  vocab.merges = learn_merges(kBuiltinText, kBuiltinMaxMerges);
  for (const std::string& m : vocab.merges) {
    const std::size_t space = m.find(' ');
    std::string token = m.substr(0, space) + m.substr(space + 1);
    if (std::find(vocab.tokens.begin(), vocab.tokens.end(), token) != vocab.tokens.end()) continue;
    vocab.tokens.push_back(std::move(token));
    vocab.types.push_back(TokenType::normal);
    vocab.scores.push_back(0.0f);
  }
  vocab.bos = static_cast<uint32_t>(vocab.tokens.size());
  vocab.eos = vocab.bos + 1;
  for (const std::string& t : llama3_special_tokens()) {
    vocab.tokens.push_back(t);
    vocab.types.push_back(TokenType::control);
    vocab.scores.push_back(kAddedTokenScore);
  }
  return vocab;
}

Vocab load_hf_tokenizer(const std::string& path) {
  Vocab vocab;
  try {
    vocab = parse_hf_tokenizer(read_hf_tokenizer(read_file(path)), path);
  } catch (const Error& e) {
    if (std::string_view(e.what()).starts_with(path)) throw;
    throw Error(e.kind(), fmt::format("{}: {}", path, e.what()));
  }

  std::unordered_map<std::string_view, uint32_t> ids;
  for (std::size_t i = 0; i < vocab.tokens.size(); ++i) {
    ids.emplace(vocab.tokens[i], static_cast<uint32_t>(i));
  }
  std::optional<std::string> bos_text;
  std::optional<std::string> eos_text;
  const auto config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) {
    const std::string config_file = config_path.string();
    const Json config = Json::parse(read_file(config_file), nullptr, false);
    if (config.is_discarded()) bad_json(fmt::format("{}: not valid JSON", config_file));
    bos_text = config_token(config, "bos_token");
    eos_text = config_token(config, "eos_token");
  }
  auto bos = find_id(ids, bos_text);
  if (!bos) bos = find_id(ids, "<|begin_of_text|>");
  auto eos = find_id(ids, eos_text);
  if (!eos) eos = find_id(ids, "<|end_of_text|>");
  if (!bos || !eos) {
    throw Error(ErrorKind::invalid_input,
                fmt::format("{}: cannot tell the {} token (no tokenizer_config.json entry and "
                            "no Llama-3 token for it)",
                            path, bos ? "end-of-text" : "begin-of-text"));
  }
  vocab.bos = *bos;
  vocab.eos = *eos;
  return vocab;
}

} // namespace bitnet::synth
