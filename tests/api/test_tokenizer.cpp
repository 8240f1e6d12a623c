// The public Tokenizer against bitnet.cpp's tokenization of the reference prompts
// (tests/data/reference/A.json: llama_tokenize with BOS and special-token parsing) and the
// special ids the fixture records.
#include <algorithm>

#include <gtest/gtest.h>

#include "bitnet/bitnet.hpp"
#include "support/json.hpp"

namespace bitnet {
namespace {

const std::string kData = BITNET_TEST_DATA_DIR;

TEST(Tokenizer, MatchesBitnetCppOnTheReferencePrompts) {
  const test::Json ref = test::read_json(kData + "/reference/A.json");
  const Tokenizer tok = Tokenizer::load(kData + "/reference/models/A.gguf");
  const auto model = Model::load(kData + "/reference/models/A.gguf");
  for (const test::Json& run : ref.at("runs")) {
    const auto prompt = run.at("prompt").get<std::string>();
    const auto ids = test::ids_of(run.at("prompt_ids"));
    EXPECT_EQ(tok.tokenize(prompt, true), ids) << run.at("prompt_name");
    EXPECT_EQ(model->tokenizer().tokenize(prompt, true), ids) << run.at("prompt_name");
    // Without the leading BOS, the text comes back.
    EXPECT_EQ(tok.detokenize(std::span(ids).subspan(1)), prompt) << run.at("prompt_name");
  }
  const test::Json& m = ref.at("model");
  EXPECT_EQ(tok.n_vocab(), m.at("n_vocab").get<int32_t>());
  EXPECT_EQ(tok.bos(), m.at("bos").get<int32_t>());
  EXPECT_EQ(tok.eos(), m.at("eos").get<int32_t>());
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    const auto& eog = m.at("eog_ids");
    EXPECT_EQ(tok.is_eog(id), std::find(eog.begin(), eog.end(), id) != eog.end()) << id;
  }
  EXPECT_TRUE(tok.add_bos_default());
}

TEST(Tokenizer, SpecialTokensAndPieces) {
  const Tokenizer tok = Tokenizer::load(kData + "/reference/models/A.gguf");
  const std::optional<int32_t> eot = tok.find_token("<|eot_id|>");
  ASSERT_TRUE(eot.has_value());
  EXPECT_EQ(tok.eot(), eot);
  EXPECT_EQ(tok.tokenize("a<|eot_id|>", false),
            (std::vector<int32_t>{tok.tokenize("a", false)[0], *eot}));
  EXPECT_NE(tok.tokenize("a<|eot_id|>", false, false).size(), 2u); // as plain text
  EXPECT_EQ(tok.piece(*eot), "");                                  // not rendered...
  EXPECT_EQ(tok.piece(*eot, true), "<|eot_id|>");                  // ...unless asked
  const int32_t ids[] = {*eot};
  EXPECT_EQ(tok.detokenize(ids), "<|eot_id|>");
  EXPECT_EQ(tok.detokenize(ids, false), "");
  EXPECT_THROW(tok.piece(tok.n_vocab()), Error);
  EXPECT_THROW(tok.tokenize("\xff", false), Error); // not UTF-8
}

TEST(Tokenizer, PretokenizerChoice) {
  // Model A has no tokenizer.ggml.pre (like the 2B-4T file): its Llama-3 vocabulary gets
  // the Llama-3 splitter, "default" gives bitnet.cpp's fallback.
  const std::string path = kData + "/reference/models/A.gguf";
  EXPECT_EQ(Tokenizer::load(path).pretokenizer(), "llama3");
  EXPECT_EQ(Tokenizer::load(path, "default").pretokenizer(), "default");
  EXPECT_THROW(Tokenizer::load(path, "gpt9"), Error);
  EXPECT_THROW(Tokenizer::load(kData + "/no/such.gguf"), Error);
}

} // namespace
} // namespace bitnet
