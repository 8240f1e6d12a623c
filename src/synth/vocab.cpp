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

#include "bitnet/error.hpp"
#include "tokenizer/byte_level.hpp"
#include "util/json.hpp"
#include "util/utf8.hpp"

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

json::Value parse_json_file(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const Error& e) {
    throw Error(e.kind(), fmt::format("{}: {}", path, e.what()));
  }
}

// The token text of a tokenizer_config.json bos_token/eos_token entry (a string, or an
// object with "content"), if any.
std::optional<std::string> config_token(const json::Value& config, std::string_view key) {
  const json::Value* v = config.find(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (v->is_string()) return v->as_string();
  if (v->is_object() && v->find("content") != nullptr) return v->at("content").as_string();
  throw Error(ErrorKind::invalid_input,
              fmt::format("tokenizer_config.json: '{}' is neither a string nor an object", key));
}

Vocab parse_hf_tokenizer(const json::Value& root, const std::string& path) {
  const json::Value& model = root.at("model");
  if (model.at("type").as_string() != "BPE") {
    throw Error(ErrorKind::invalid_input, fmt::format("{}: model.type is '{}', expected 'BPE'",
                                                      path, model.at("type").as_string()));
  }

  struct Entry {
    int64_t id;
    const std::string* text;
    TokenType type;
  };
  std::vector<Entry> entries;
  for (const auto& [text, id] : model.at("vocab").as_object()) {
    entries.push_back({id.as_int(), &text, TokenType::normal});
  }
  const std::size_t n_base = entries.size();
  if (const json::Value* added = root.find("added_tokens")) {
    for (const json::Value& t : added->as_array()) {
      const json::Value* special = t.find("special");
      const bool is_special = special != nullptr && special->as_bool();
      entries.push_back({t.at("id").as_int(), &t.at("content").as_string(),
                         is_special ? TokenType::control : TokenType::user_defined});
    }
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

  for (const json::Value& m : model.at("merges").as_array()) {
    if (m.is_string()) {
      vocab.merges.push_back(m.as_string());
    } else if (m.is_array() && m.as_array().size() == 2) {
      vocab.merges.push_back(m.as_array()[0].as_string() + " " + m.as_array()[1].as_string());
    } else {
      throw Error(ErrorKind::invalid_input,
                  fmt::format("{}: merge {} is neither \"a b\" nor [\"a\", \"b\"]", path,
                              vocab.merges.size()));
    }
  }
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
  const json::Value root = parse_json_file(path);
  Vocab vocab;
  try {
    vocab = parse_hf_tokenizer(root, path);
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
    const json::Value config = parse_json_file(config_path.string());
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
