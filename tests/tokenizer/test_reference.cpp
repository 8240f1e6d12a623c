// Prompt ids that bitnet.cpp produced (llama_tokenize with add_special and parse_special)
// for the reference models and the real-vocabulary runs (tests/data/reference/README.md),
// and the token count llama-perplexity reports for the trained tiny model's text.
#include <gtest/gtest.h>

#include "tokenizer/tokenizer.hpp"
#include "tokenizer_data.hpp"

namespace bitnet::tokenizer {
namespace {

using test::data_path;

void expect_prompt_ids(const Tokenizer& tok, const std::string& reference) {
  const json::Value ref = json::parse(test::read_text(data_path("reference/" + reference)));
  const auto& runs = ref.at("runs").as_array();
  ASSERT_FALSE(runs.empty());
  for (const json::Value& run : runs) {
    std::vector<int32_t> expected;
    for (const json::Value& id : run.at("prompt_ids").as_array()) {
      expected.push_back(static_cast<int32_t>(id.as_int()));
    }
    EXPECT_EQ(tok.encode(run.at("prompt").as_string(), true, true), expected)
        << reference << " / " << run.at("prompt_name").as_string();
  }
}

class ReferenceModel : public ::testing::TestWithParam<const char*> {};

TEST_P(ReferenceModel, PromptIdsMatchBitnetCpp) {
  const std::string name = GetParam();
  const auto file = gguf::File::open(data_path("reference/models/" + name + ".gguf"));
  const auto tok = Tokenizer::from_gguf(file);
  EXPECT_EQ(tok.n_vocab(), 678);
  EXPECT_EQ(tok.bos(), 668);
  EXPECT_TRUE(tok.is_eog(669));
  EXPECT_TRUE(tok.is_eog(677));
  // B has no tokenizer.ggml.pre and a compact (non-Llama-3-sized) vocabulary: default.
  EXPECT_EQ(tok.pretokenizer(), name == "B" ? PreTokenizer::default_ : PreTokenizer::llama3);
  expect_prompt_ids(tok, name + ".json");
}

INSTANTIATE_TEST_SUITE_P(AllModels, ReferenceModel, ::testing::Values("A", "B", "C", "D"));

TEST(RealVocabulary, PromptIdsMatchBitnetCpp) {
  const auto tok = Tokenizer::from_gguf(test::llama3_gguf("llama-bpe"));
  for (const char* reference : {"real-tiny-s1.json", "real-small-s1.json", "real-full-s1.json"}) {
    expect_prompt_ids(tok, reference);
  }
}

TEST(RealTinyModel, ValidationTextHasTheReferenceTokenCount) {
  const auto file = gguf::File::open(data_path("real-tiny/bitnet-tiny-brown.gguf"));
  const auto tok = Tokenizer::from_gguf(file);
  const std::string text = test::read_text(data_path("real-tiny/val.txt"));
  const auto ids = tok.encode(text, true);
  EXPECT_EQ(ids.size(), 101331u); // README: 101,331 tokens with BOS
  EXPECT_EQ(tok.decode(std::span<const int32_t>(ids).subspan(1)), text);
}

} // namespace
} // namespace bitnet::tokenizer
