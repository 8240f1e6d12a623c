// Vocabularies for synthetic models: byte symbols, built-in BPE, tokenizer.json import.
#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "bitnet/error.hpp"
#include "support/error_kind.hpp"
#include "support/temp_dir.hpp"
#include "synth/vocab.hpp"

namespace bitnet::synth {
namespace {

using test::error_kind;

const std::string kLlama3Json = std::string(BITNET_TEST_DATA_DIR) + "/tokenizer/tokenizer.json";

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

TEST(ByteSymbols, MatchGpt2Mapping) {
  EXPECT_EQ(byte_symbol('!'), "!");
  EXPECT_EQ(byte_symbol('a'), "a");
  EXPECT_EQ(byte_symbol(' '), "\xC4\xA0");  // U+0120 'Ġ'
  EXPECT_EQ(byte_symbol('\n'), "\xC4\x8A"); // U+010A 'Ċ'
  EXPECT_EQ(byte_symbol(0), "\xC4\x80");    // U+0100
  EXPECT_EQ(byte_symbol(0xAD), "\xC5\x83"); // soft hyphen is not printable: U+0143
  EXPECT_EQ(byte_symbol(0xFF), "\xC3\xBF"); // 'ÿ' maps to itself
}

TEST(LearnMerges, MostFrequentPairFirst) {
  // "ab", " ab", " ab": (a,b) occurs 3 times, then (Ġ,ab) twice.
  EXPECT_EQ(learn_merges("ab ab ab", 100), (std::vector<std::string>{"a b", "\xC4\xA0 ab"}));
  // A pair seen once never becomes a merge.
  EXPECT_EQ(learn_merges("xy xy", 100), (std::vector<std::string>{"x y"}));
}

TEST(LearnMerges, TiesGoToTheSmallestPair) {
  // Counts: (a,b) 2, (b,a) 2, (Ġ,a) 2, (Ġ,b) 1. 'a' < 'b' < 'Ġ' byte-wise.
  EXPECT_EQ(learn_merges("ba ba ab ab", 100),
            (std::vector<std::string>{"a b", "b a", "\xC4\xA0 ab"}));
}

TEST(LearnMerges, StopsAtTheLimit) {
  EXPECT_EQ(learn_merges("ab ab ab", 1), (std::vector<std::string>{"a b"}));
  EXPECT_TRUE(learn_merges("", 10).empty());
}

TEST(BuiltinVocab, BytesMergesAndSpecialTokens) {
  const Vocab v = builtin_vocab();
  ASSERT_EQ(v.tokens.size(), v.types.size());
  ASSERT_EQ(v.tokens.size(), v.scores.size());
  EXPECT_GT(v.merges.size(), 100u);

  const std::vector<uint8_t> order = byte_symbol_order();
  for (std::size_t id = 0; id < 256; ++id)
    EXPECT_EQ(v.tokens[id], byte_symbol(order[id]));

  // Every merge combines tokens that exist and its result is a token: the BPE is usable.
  std::set<std::string> tokens(v.tokens.begin(), v.tokens.end());
  EXPECT_EQ(tokens.size(), v.tokens.size()) << "duplicate token text";
  for (const std::string& m : v.merges) {
    const auto space = m.find(' ');
    ASSERT_NE(space, std::string::npos) << m;
    const std::string left = m.substr(0, space);
    const std::string right = m.substr(space + 1);
    EXPECT_TRUE(tokens.count(left)) << m;
    EXPECT_TRUE(tokens.count(right)) << m;
    EXPECT_TRUE(tokens.count(left + right)) << m;
  }
  EXPECT_TRUE(tokens.count("\xC4\xA0the")) << "' the' should be learned from English text";

  const auto& specials = llama3_special_tokens();
  ASSERT_EQ(specials.size(), 10u);
  const std::size_t first = v.tokens.size() - specials.size();
  for (std::size_t i = 0; i < specials.size(); ++i) {
    EXPECT_EQ(v.tokens[first + i], specials[i]);
    EXPECT_EQ(v.types[first + i], TokenType::control);
  }
  EXPECT_EQ(v.tokens[v.bos], "<|begin_of_text|>");
  EXPECT_EQ(v.tokens[v.eos], "<|end_of_text|>");
  EXPECT_EQ(v.tokens.back(), "<|eot_id|>");
  for (std::size_t id = 0; id < first; ++id)
    EXPECT_EQ(v.types[id], TokenType::normal);
}

TEST(BuiltinVocab, Deterministic) {
  const Vocab a = builtin_vocab();
  const Vocab b = builtin_vocab();
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.merges, b.merges);
}

TEST(Vocab, PadToFillsWithUserDefinedPads) {
  Vocab v = builtin_vocab();
  const std::size_t n = v.size();
  v.pad_to(n + 3);
  ASSERT_EQ(v.size(), n + 3);
  EXPECT_EQ(v.tokens[n], "[PAD" + std::to_string(n) + "]");
  EXPECT_EQ(v.types[n + 2], TokenType::user_defined);
  EXPECT_EQ(v.scores.size(), n + 3);
  EXPECT_EQ(error_kind([&] { v.pad_to(n); }), ErrorKind::invalid_argument);
}

TEST(HfTokenizer, ImportsTheLlama3Tokenizer) {
  const Vocab v = load_hf_tokenizer(kLlama3Json);
  ASSERT_EQ(v.size(), 128256u);
  EXPECT_EQ(v.merges.size(), 280147u);
  EXPECT_EQ(v.tokens[0], "!");
  EXPECT_EQ(v.tokens[128000], "<|begin_of_text|>");
  EXPECT_EQ(v.tokens[128009], "<|eot_id|>");
  EXPECT_EQ(v.tokens[128255], "<|reserved_special_token_250|>");
  EXPECT_EQ(v.types[0], TokenType::normal);
  EXPECT_EQ(v.types[127999], TokenType::normal);
  EXPECT_EQ(v.types[128000], TokenType::control);
  EXPECT_EQ(v.types[128255], TokenType::control);
  EXPECT_EQ(v.scores[0], 0.0f);
  EXPECT_EQ(v.scores[128001], -1000.0f);
  EXPECT_EQ(v.merges[0], "\xC4\xA0 \xC4\xA0"); // "Ġ Ġ"
  // Llama-3 ids 0..255 are the byte symbols in GPT-2 order.
  const std::vector<uint8_t> order = byte_symbol_order();
  ASSERT_EQ(order.size(), 256u);
  EXPECT_EQ(std::set<uint8_t>(order.begin(), order.end()).size(), 256u);
  for (std::size_t id = 0; id < 256; ++id) {
    EXPECT_EQ(v.tokens[id], byte_symbol(order[id])) << "id " << id;
  }
  // bos/eos from the tokenizer_config.json next to it.
  EXPECT_EQ(v.bos, 128000u);
  EXPECT_EQ(v.eos, 128001u);
}

TEST(HfTokenizer, HolesPairMergesAndAddedTokenTypes) {
  test::TempDir dir;
  const std::string path = dir.file("tokenizer.json");
  write_text(path, R"({
    "added_tokens": [
      {"id": 5, "content": "<s>", "special": true},
      {"id": 6, "content": "</s>", "special": true},
      {"id": 7, "content": "<user>", "special": false},
      {"id": 2, "content": "c", "special": false}
    ],
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 4},
              "merges": [["a", "b"], "ab c"]}
  })");
  write_text(dir.file("tokenizer_config.json"),
             R"({"bos_token": {"content": "<s>"}, "eos_token": "</s>"})");
  const Vocab v = load_hf_tokenizer(path);
  EXPECT_EQ(v.tokens,
            (std::vector<std::string>{"a", "b", "c", "[PAD3]", "ab", "<s>", "</s>", "<user>"}));
  EXPECT_EQ(v.types[3], TokenType::user_defined);
  EXPECT_EQ(v.types[4], TokenType::normal);
  EXPECT_EQ(v.types[5], TokenType::control);
  EXPECT_EQ(v.types[7], TokenType::user_defined);
  EXPECT_EQ(v.types[2], TokenType::user_defined); // restated as a non-special added token
  EXPECT_EQ(v.merges, (std::vector<std::string>{"a b", "ab c"}));
  EXPECT_EQ(v.bos, 5u);
  EXPECT_EQ(v.eos, 6u);
}

TEST(HfTokenizer, BadFilesGiveCleanErrors) {
  test::TempDir dir;
  const std::string path = dir.file("tokenizer.json");
  const auto load_text = [&](const std::string& text) {
    write_text(path, text);
    return error_kind([&] { load_hf_tokenizer(path); });
  };
  const std::string specials =
      R"([{"id": 2, "content": "<|begin_of_text|>", "special": true},
          {"id": 3, "content": "<|end_of_text|>", "special": true}])";
  EXPECT_EQ(error_kind([&] { load_hf_tokenizer(dir.file("missing.json")); }), ErrorKind::io);
  EXPECT_EQ(load_text("{"), ErrorKind::invalid_input);
  EXPECT_EQ(load_text(R"({"model": {"type": "WordPiece", "vocab": {}, "merges": []}})"),
            ErrorKind::invalid_input);
  // A huge id would mean padding billions of tokens.
  EXPECT_EQ(load_text(R"({"added_tokens":)" + specials +
                      R"(, "model": {"type": "BPE", "vocab": {"a": 4000000000}, "merges": []}})"),
            ErrorKind::invalid_input);
  EXPECT_EQ(load_text(R"({"added_tokens":)" + specials +
                      R"(, "model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}})"),
            ErrorKind::invalid_input);
  EXPECT_EQ(load_text(R"({"added_tokens":)" + specials +
                      R"(, "model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}})"),
            ErrorKind::invalid_input);
  EXPECT_EQ(load_text(R"({"added_tokens":)" + specials +
                      R"(, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}})"),
            ErrorKind::invalid_input);
  // Fields of the wrong shape, wherever they sit.
  for (const char* model :
       {R"("model": {"type": 1, "vocab": {}, "merges": []})",
        R"("model": {"type": "BPE", "vocab": {"a": "0"}, "merges": []})",
        R"("model": {"type": "BPE", "vocab": {"a": 0.5}, "merges": []})",
        R"("model": {"type": "BPE", "vocab": {"a": [0]}, "merges": []})",
        R"("model": {"type": "BPE", "vocab": {"a": 0}, "merges": [1]})",
        R"("model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "b", "c"]]})",
        R"("model": {"type": "BPE", "vocab": {"a": 0}})", // no merges
        R"("model": {"type": "BPE", "merges": []})"}) {   // no vocab
    EXPECT_EQ(load_text(std::string(R"({"added_tokens":)") + specials + ", " + model + "}"),
              ErrorKind::invalid_input)
        << model;
  }
  EXPECT_EQ(load_text(R"({"added_tokens": [{"content": "<s>"}],)"
                      R"( "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})"),
            ErrorKind::invalid_input); // an added token without an id
  EXPECT_EQ(load_text("[]"), ErrorKind::invalid_input);
  EXPECT_EQ(load_text(""), ErrorKind::invalid_input);
  // No way to tell bos/eos: no config and no Llama-3 special tokens.
  EXPECT_EQ(load_text(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})"),
            ErrorKind::invalid_input);
  // The same file with the Llama-3 names loads.
  write_text(path, R"({"added_tokens":)" + specials +
                       R"(, "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}})");
  const Vocab v = load_hf_tokenizer(path);
  EXPECT_EQ(v.bos, 2u);
  EXPECT_EQ(v.eos, 3u);
}

} // namespace
} // namespace bitnet::synth
