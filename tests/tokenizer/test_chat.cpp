// Chat formats: the Llama-3 header format against the fixture conversations, and the
// 2B-4T format as bitnet.cpp's llama_chat_apply_template renders it ("bitnet" branch).
#include <cstdio>

#include <gtest/gtest.h>

#include "bitnet/error.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer_data.hpp"

namespace bitnet::tokenizer {
namespace {

using test::Json;

std::vector<Message> messages_of(const Json& array) {
  std::vector<Message> out;
  for (const Json& m : array) {
    out.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  }
  return out;
}

TEST(ChatTemplate, Llama3MatchesTheFixtureConversations) {
  const auto tok = Tokenizer::from_gguf(test::llama3_gguf("llama-bpe"));
  const auto tmpl = ChatTemplate::by_name("llama3");
  const auto cases = test::read_jsonl(test::data_path("tokenizer/llama3_chat_cases.jsonl"));
  ASSERT_EQ(cases.size(), 3u);
  for (const Json& c : cases) {
    const auto messages = messages_of(c.at("messages"));
    const std::string text = tmpl.render(messages, c.at("add_generation_prompt").get<bool>());
    // The fixture's template writes BOS as text; ours leaves it to the tokenizer.
    EXPECT_EQ("<|begin_of_text|>" + text, c.at("rendered").get<std::string>())
        << c.at("name").get<std::string>();
    EXPECT_EQ(tok.encode(text, tok.add_bos_default(), true), test::ids_of(c.at("ids")))
        << c.at("name").get<std::string>();
  }
}

TEST(ChatTemplate, BitnetFormatAsBitnetCppRendersIt) {
  const auto tmpl = ChatTemplate::by_name("bitnet");
  const std::vector<Message> chat = {
      {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye"}};
  EXPECT_EQ(tmpl.render(chat, true),
            "System: Be brief.User: Hi<|eot_id|>Assistant: Hello.User: Bye<|eot_id|>Assistant: ");
  EXPECT_EQ(tmpl.render(chat, false),
            "System: Be brief.User: Hi<|eot_id|>Assistant: Hello.User: Bye<|eot_id|>");
  EXPECT_EQ(tmpl.render(std::span<const Message>(chat).first(3), false),
            "System: Be brief.User: Hi<|eot_id|>Assistant: Hello.");
}

TEST(ChatTemplate, ChosenFromTheGgufTemplate) {
  // The synth importer writes the converter's 2B-4T template, which contains "BITNET".
  EXPECT_EQ(ChatTemplate::from_gguf(test::llama3_gguf("llama-bpe")).name(), "bitnet");
  gguf::Writer writer;
  writer.add_kv("tokenizer.chat_template",
                gguf::Value::string("{{ '<|start_header_id|>' + role + '<|end_header_id|>' }}"));
  const std::string path = ::testing::TempDir() + "/chat-llama3.gguf";
  writer.write(path, [](std::size_t, const gguf::TensorInfo&, gguf::Writer::Sink&) {});
  EXPECT_EQ(ChatTemplate::from_gguf(gguf::File::open(path)).name(), "llama3");
  std::remove(path.c_str());
  EXPECT_EQ(ChatTemplate::by_name("llama3").name(), "llama3");
  EXPECT_THROW(ChatTemplate::by_name("chatml"), Error);
}

} // namespace
} // namespace bitnet::tokenizer
