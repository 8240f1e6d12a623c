// The Llama-3 BPE tokenizer against the fixtures made by independent implementations
// (tests/data/tokenizer/README.md) and against bitnet.cpp's own tokenization.
#include <algorithm>
#include <random>

#include <gtest/gtest.h>

#include "bitnet/error.hpp"
#include "tokenizer/byte_level.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer_data.hpp"

namespace bitnet::tokenizer {
namespace {

using test::data_path;
using test::ids_of;
using test::Json;
using test::llama3_gguf;
using test::read_jsonl;

// Every case: ids with special tokens matched, ids_plain without, and decoding back.
void check_cases(const Tokenizer& tok, const std::string& file) {
  const auto cases = read_jsonl(data_path(file));
  ASSERT_GT(cases.size(), 1000u);
  std::size_t failures = 0;
  for (const Json& c : cases) {
    const std::string& name = c.at("name").get<std::string>();
    const std::string& text = c.at("text").get<std::string>();
    const std::vector<int32_t> ids = ids_of(c.at("ids"));
    const auto plain = c.find("ids_plain");
    const std::vector<int32_t> ids_plain = plain != c.end() ? ids_of(*plain) : ids;
    const auto got = tok.encode(text, false, true);
    const auto got_plain = tok.encode(text, false, false);
    const std::string decoded = tok.decode(ids);
    const bool ok = got == ids && got_plain == ids_plain && decoded == text;
    if (!ok && ++failures <= 10) {
      ADD_FAILURE() << name << ": ids " << (got == ids ? "ok" : "differ") << ", ids_plain "
                    << (got_plain == ids_plain ? "ok" : "differ") << ", decode "
                    << (decoded == text ? "ok" : "differs");
    }
  }
  EXPECT_EQ(failures, 0u) << "of " << cases.size() << " cases";
}

TEST(Llama3Tokenizer, MatchesEveryFixtureCase) {
  const auto tok = Tokenizer::from_gguf(llama3_gguf("llama-bpe"));
  EXPECT_EQ(tok.pretokenizer(), PreTokenizer::llama3);
  check_cases(tok, "tokenizer/llama3_cases.jsonl");
}

TEST(Llama3Tokenizer, DefaultPretokenizerMatchesBitnetCppOnEveryCase) {
  Options options;
  options.pretokenizer = PreTokenizer::default_;
  const auto tok = Tokenizer::from_gguf(llama3_gguf(""), options);
  EXPECT_EQ(tok.pretokenizer(), PreTokenizer::default_);
  check_cases(tok, "tokenizer/llama3_cases_default_pretokenizer.jsonl");
}

TEST(Llama3Tokenizer, PretokenizerChoice) {
  // No pre key and the Llama-3 vocabulary: the correct splitter, not bitnet.cpp's fallback.
  EXPECT_EQ(Tokenizer::from_gguf(llama3_gguf("")).pretokenizer(), PreTokenizer::llama3);
  EXPECT_EQ(Tokenizer::from_gguf(llama3_gguf("default")).pretokenizer(), PreTokenizer::default_);
  Options options;
  options.pretokenizer = PreTokenizer::default_;
  EXPECT_EQ(Tokenizer::from_gguf(llama3_gguf("llama-bpe"), options).pretokenizer(),
            PreTokenizer::default_);
  EXPECT_EQ(pretokenizer_from_name("llama-v3"), PreTokenizer::llama3);
  EXPECT_THROW(pretokenizer_from_name("gpt-4"), Error);
}

TEST(Llama3Tokenizer, SpecialIdsAndBos) {
  const auto tok = Tokenizer::from_gguf(llama3_gguf(""));
  EXPECT_EQ(tok.n_vocab(), 128256);
  EXPECT_EQ(tok.bos(), 128000);
  EXPECT_EQ(tok.eos(), 128001);
  EXPECT_EQ(tok.eot(), 128009);
  EXPECT_TRUE(tok.is_eog(128001));
  EXPECT_TRUE(tok.is_eog(128009));
  EXPECT_FALSE(tok.is_eog(128000));
  EXPECT_FALSE(tok.is_eog(13));
  EXPECT_TRUE(tok.add_bos_default());
  EXPECT_EQ(tok.find_token("<|eot_id|>"), 128009);
  EXPECT_EQ(tok.encode("Hello", true), (std::vector<int32_t>{128000, 9906}));
  EXPECT_EQ(tok.encode("", true), (std::vector<int32_t>{128000}));
  EXPECT_TRUE(tok.encode("", false).empty());
}

TEST(Llama3Tokenizer, PiecesRenderControlTokensOnlyWhenAsked) {
  const auto tok = Tokenizer::from_gguf(llama3_gguf(""));
  EXPECT_EQ(tok.piece(9906), "Hello");
  EXPECT_EQ(tok.piece(220), " ");
  EXPECT_EQ(tok.piece(128009), "");
  EXPECT_EQ(tok.piece(128009, true), "<|eot_id|>");
  const std::vector<int32_t> ids{9906, 128009};
  EXPECT_EQ(tok.decode(ids), "Hello<|eot_id|>");
  EXPECT_EQ(tok.decode(ids, false), "Hello");
  EXPECT_THROW(tok.piece(-1), Error);
  EXPECT_THROW(tok.piece(128256), Error);
}

TEST(Llama3Tokenizer, InvalidUtf8IsRejectedWithItsOffset) {
  const auto tok = Tokenizer::from_gguf(llama3_gguf(""));
  for (const std::string& bad : {std::string("ab\xC3"), std::string("ab\xC0\xAF"),
                                 std::string("ab\xED\xA0\x80"), std::string("ab\xFF")}) {
    try {
      tok.encode(bad, false);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::invalid_input);
      EXPECT_NE(std::string(e.what()).find("invalid UTF-8 at byte 2"), std::string::npos)
          << e.what();
    }
  }
}

TEST(Llama3Tokenizer, RandomBytesNeverCrashAndValidTextRoundTrips) {
  const auto tok = Tokenizer::from_gguf(llama3_gguf(""));
  Options options;
  options.pretokenizer = PreTokenizer::default_;
  const auto tok_default = Tokenizer::from_gguf(llama3_gguf(""), options);
  std::mt19937 rng(1234);
  std::size_t valid = 0;
  for (int i = 0; i < 2000; ++i) {
    // Odd rounds: random bytes (mostly invalid UTF-8); even rounds: valid text mixing
    // special-token text, partial special text, white space and multi-byte characters.
    static const char* const kParts[] = {
        "a", " ", "<|", "|>", "<|eot_id|>", "\n", "\xC3\xA9", "1", "\xF0\x9F\x98\x80", "'s", "\t"};
    std::string text;
    const std::size_t n = rng() % 48;
    for (std::size_t k = 0; k < n; ++k) {
      if (i % 2) {
        text += static_cast<char>(rng() % 256);
      } else {
        text += kParts[rng() % std::size(kParts)];
      }
    }
    for (const Tokenizer* t : {&tok, &tok_default}) {
      try {
        const auto ids = t->encode(text, false);
        EXPECT_EQ(t->decode(ids), text);
        ++valid;
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::invalid_input);
      }
    }
  }
  EXPECT_GT(valid, 1000u);
}

TEST(Llama3Tokenizer, LongSingleWordRoundTrips) {
  const auto tok = Tokenizer::from_gguf(llama3_gguf(""));
  for (const char* unit : {"a", "ab", "é", "7", " "}) {
    std::string text;
    while (text.size() < 10000)
      text += unit;
    const auto ids = tok.encode(text, false);
    EXPECT_LT(ids.size(), text.size()) << unit;
    EXPECT_EQ(tok.decode(ids), text) << unit;
  }
}

TEST(Llama3Tokenizer, StreamDecoderHoldsPartialCharacters) {
  const auto tok = Tokenizer::from_gguf(llama3_gguf(""));
  const auto byte_token = [&](uint8_t b) {
    std::string symbol;
    append_utf8(symbol, byte_to_code_point(b));
    return *tok.find_token(symbol);
  };
  StreamDecoder stream(tok);
  EXPECT_EQ(stream.push(byte_token('x')), "x");
  EXPECT_EQ(stream.push(byte_token(0xF0)), "");
  EXPECT_EQ(stream.push(byte_token(0x9F)), "");
  EXPECT_EQ(stream.push(byte_token(0x98)), "");
  EXPECT_EQ(stream.push(byte_token(0x80)), "\xF0\x9F\x98\x80");
  EXPECT_EQ(stream.push(byte_token(0xC3)), "");
  EXPECT_EQ(stream.push(byte_token('a')), "\xC3"
                                          "a"); // can never complete: passed through
  EXPECT_EQ(stream.push(128009), "");           // control tokens are not printed
  EXPECT_EQ(stream.push(byte_token(0xE2)), "");
  EXPECT_EQ(stream.flush(), "\xE2");
  EXPECT_EQ(stream.flush(), "");
  StreamDecoder with_special(tok, true);
  EXPECT_EQ(with_special.push(128009), "<|eot_id|>");
}

} // namespace
} // namespace bitnet::tokenizer
