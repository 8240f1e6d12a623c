// Prompt ids that bitnet.cpp produced (llama_tokenize with add_special and parse_special)
// for the reference models and the real-vocabulary runs (tests/data/reference/README.md),
// and the token count llama-perplexity reports for the trained tiny model's text.
#include <gtest/gtest.h>

#include "tokenizer/tokenizer.hpp"
#include "tokenizer_data.hpp"

namespace bitnet::tokenizer {
namespace {

using test::data_path;
using test::Json;

void expect_prompt_ids(const Tokenizer& tok, const std::string& reference) {
  const Json ref = test::read_json(data_path("reference/" + reference));
  const auto& runs = ref.at("runs");
  ASSERT_FALSE(runs.empty());
  for (const Json& run : runs) {
    EXPECT_EQ(tok.encode(run.at("prompt").get<std::string>(), true, true),
              test::ids_of(run.at("prompt_ids")))
        << reference << " / " << run.at("prompt_name").get<std::string>();
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
