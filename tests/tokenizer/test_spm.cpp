// SentencePiece (tokenizer.ggml.model = llama) on a small vocabulary written here: merges by
// score, leftmost first; byte fallback; the leading space; special tokens.
#include <cstdio>

#include <gtest/gtest.h>

#include "bitnet/error.hpp"
#include "tokenizer/tokenizer.hpp"

namespace bitnet::tokenizer {
namespace {

const std::string kSpace = "\xE2\x96\x81"; // ▁

// Tokens: <unk>, <s>, </s>, the 256 byte tokens, then pieces with their scores.
gguf::File small_spm_gguf(const std::string& model = "llama") {
  std::vector<std::pair<std::string, float>> pieces = {{kSpace, -1},
                                                       {"h", -2},
                                                       {"e", -2},
                                                       {"l", -2},
                                                       {"o", -2},
                                                       {"w", -2},
                                                       {"r", -2},
                                                       {"d", -2},
                                                       {kSpace + "h", -3},
                                                       {"ll", -3},
                                                       {kSpace + "w", -3},
                                                       {"or", -3},
                                                       {kSpace + "he", -4},
                                                       {"ld", -4},
                                                       {"llo", -5},
                                                       {kSpace + "wor", -5},
                                                       {kSpace + "hello", -6},
                                                       {kSpace + "world", -6}};
  std::vector<gguf::Value> tokens{gguf::Value::string("<unk>"), gguf::Value::string("<s>"),
                                  gguf::Value::string("</s>")};
  std::vector<gguf::Value> types{gguf::Value::i32(2), gguf::Value::i32(3), gguf::Value::i32(3)};
  std::vector<gguf::Value> scores(3, gguf::Value::f32(0));
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.push_back(gguf::Value::string(name));
    types.push_back(gguf::Value::i32(6));
    scores.push_back(gguf::Value::f32(0));
  }
  for (const auto& [text, score] : pieces) {
    tokens.push_back(gguf::Value::string(text));
    types.push_back(gguf::Value::i32(1));
    scores.push_back(gguf::Value::f32(score));
  }
  gguf::Writer writer;
  writer.add_kv("tokenizer.ggml.model", gguf::Value::string(model));
  if (model == "gpt2")
    writer.add_kv("tokenizer.ggml.merges", gguf::Value::array(std::vector<std::string>{"h e"}));
  writer.add_kv("tokenizer.ggml.tokens", gguf::Value::array(gguf::ValueType::string, tokens));
  writer.add_kv("tokenizer.ggml.scores", gguf::Value::array(gguf::ValueType::float32, scores));
  writer.add_kv("tokenizer.ggml.token_type", gguf::Value::array(gguf::ValueType::int32, types));
  writer.add_kv("tokenizer.ggml.bos_token_id", gguf::Value::u32(1));
  writer.add_kv("tokenizer.ggml.eos_token_id", gguf::Value::u32(2));
  const std::string path = ::testing::TempDir() + "/small-spm.gguf";
  writer.write(path, [](std::size_t, const gguf::TensorInfo&, gguf::Writer::Sink&) {});
  auto file = gguf::File::open(path);
  std::remove(path.c_str());
  return file;
}

// The model must match the vocabulary's form: this '▁' vocabulary under a byte-level BPE
// model would print '▁' for every space.
TEST(SpmVocabulary, RefusedUnderTheBpeModel) {
  try {
    Tokenizer::from_gguf(small_spm_gguf("gpt2"));
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::format);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("tokenizer.ggml.model 'gpt2' (byte-level BPE) does not match the "
                       "vocabulary: "),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("tokens spell a space as '▁', none as 'Ġ'"), std::string::npos) << msg;
  }
}

class Spm : public ::testing::Test {
protected:
  Spm() : tok(Tokenizer::from_gguf(small_spm_gguf())) {}
  int32_t id(const std::string& text) const { return *tok.find_token(text); }
  int32_t byte(uint8_t b) const { return 3 + b; }
  Tokenizer tok;
};

TEST_F(Spm, MergesHighestScoreFirstWithALeadingSpace) {
  EXPECT_EQ(tok.encode("hello world", true),
            (std::vector<int32_t>{1, id(kSpace + "hello"), id(kSpace + "world")}));
  EXPECT_EQ(tok.encode("hello world", false),
            (std::vector<int32_t>{id(kSpace + "hello"), id(kSpace + "world")}));
  EXPECT_TRUE(tok.encode("", false).empty());
  EXPECT_EQ(tok.encode("", true), std::vector<int32_t>{1});
}

TEST_F(Spm, UnknownCharactersFallBackToBytes) {
  // "i" and the check mark have no piece: their UTF-8 bytes become <0xXX> tokens.
  EXPECT_EQ(tok.encode("hi \xE2\x9C\x93", false),
            (std::vector<int32_t>{id(kSpace + "h"), byte('i'), id(kSpace), byte(0xE2), byte(0x9C),
                                  byte(0x93)}));
}

TEST_F(Spm, DecodeInvertsEncode) {
  for (const std::string text : {"hello world", "hi \xE2\x9C\x93", "  two  spaces", "held"}) {
    EXPECT_EQ(tok.decode(tok.encode(text, false)), text);
    EXPECT_EQ(tok.decode(tok.encode(text, true), false), text);
  }
  EXPECT_EQ(tok.piece(byte(0xE2)), "\xE2");
  EXPECT_EQ(tok.piece(id(kSpace + "hello")), " hello");
  EXPECT_EQ(tok.piece(1), "");
  EXPECT_EQ(tok.piece(1, true), "<s>");
}

TEST_F(Spm, SpecialTokenTextStartsANewWord) {
  EXPECT_EQ(tok.encode("<s>hello", false, true), (std::vector<int32_t>{1, id(kSpace + "hello")}));
  const auto plain = tok.encode("<s>hello", false, false);
  EXPECT_EQ(plain.front(), id(kSpace));
  EXPECT_EQ(tok.decode(plain), "<s>hello");
  EXPECT_EQ(tok.bos(), 1);
  EXPECT_EQ(tok.eos(), 2);
  EXPECT_TRUE(tok.is_eog(2));
}

} // namespace
} // namespace bitnet::tokenizer
