// `bitnet tokenize` end to end: the built binary against the library's own tokenization of
// the same model (reference model A: compact Llama-3 BPE with control tokens).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bitnet/error.hpp"
#include "support/cli_runner.hpp"
#include "tokenizer/tokenizer.hpp"

namespace bitnet::tokenizer {
namespace {

using test::data_path;
using test::run_cli;

const std::string kModel = data_path("reference/models/A.gguf");

Tokenizer library_tokenizer(std::optional<PreTokenizer> pre = std::nullopt) {
  Options options;
  options.pretokenizer = pre;
  return Tokenizer::from_gguf(gguf::File::open(kModel), options);
}

std::string ids_json(const std::vector<int32_t>& ids) {
  return fmt::format("{{\"ids\":[{}]}}\n", fmt::join(ids, ","));
}

TEST(TokenizeCli, IdsJsonAndDefaultLines) {
  const auto tok = library_tokenizer();
  const std::string text = "Hello world<|eot_id|>\n\xC3\xA9";
  const auto ids = tok.encode(text, true, true);

  const auto as_ids = run_cli({"tokenize", "--model", kModel, "--text", text, "--ids"});
  ASSERT_EQ(as_ids.exit_code, 0) << as_ids.err;
  EXPECT_EQ(as_ids.out, fmt::format("[{}]\n", fmt::join(ids, ", ")));

  const auto as_json = run_cli(
      {"tokenize", "--model", kModel, "--text", text, "--json", "--no-bos", "--no-special"});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  EXPECT_EQ(as_json.out, ids_json(tok.encode(text, false, false)));

  const auto lines = run_cli({"tokenize", "--model", kModel, "--text", text});
  ASSERT_EQ(lines.exit_code, 0) << lines.err;
  std::string expected;
  for (const int32_t id : ids) {
    std::string piece = tok.piece(id, true);
    if (piece == "\n") piece = "\\n";
    if (piece == "\xC3") piece = "\\xc3"; // half a character is escaped
    if (piece == "\xA9") piece = "\\xa9";
    expected += fmt::format("{}\t{}\n", id, piece);
  }
  EXPECT_EQ(lines.out, expected);
}

TEST(TokenizeCli, JsonlGivesOneLinePerInputInOrder) {
  const auto tok = library_tokenizer();
  test::TempDir dir;
  test::write_text(dir / "in.jsonl",
                   "{\"text\":\"The old lighthouse\"}\n\n{\"text\":\"a<|eot_id|>b\",\"x\":1}\n"
                   "{\"text\":\"\"}\n");
  const auto r = run_cli({"tokenize", "--model", kModel, "--jsonl", (dir / "in.jsonl").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, ids_json(tok.encode("The old lighthouse", true)) +
                       ids_json(tok.encode("a<|eot_id|>b", true)) + ids_json(tok.encode("", true)));

  test::write_text(dir / "bad.jsonl", "{\"text\":\"ok\"}\n[1,2]\n");
  const auto bad =
      run_cli({"tokenize", "--model", kModel, "--jsonl", (dir / "bad.jsonl").string()});
  EXPECT_EQ(bad.exit_code, exit_code(ErrorKind::invalid_input));
  EXPECT_NE(bad.err.find("line 2"), std::string::npos) << bad.err;
}

TEST(TokenizeCli, DecodeAndPretokenizerOverride) {
  const auto tok = library_tokenizer(PreTokenizer::default_);
  const std::string text = "Hello, world 12345 don't";
  const auto ids = tok.encode(text, false);
  const auto r = run_cli({"tokenize", "--model", kModel, "--text", text, "--json", "--no-bos",
                          "--pretokenizer", "default"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, ids_json(ids));

  const auto decoded =
      run_cli({"tokenize", "--model", kModel, "--decode", fmt::format("{}", fmt::join(ids, ","))});
  ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
  EXPECT_EQ(decoded.out, text + "\n");
}

TEST(TokenizeCli, BadInputIsOneErrorLineWithItsExitCode) {
  test::TempDir dir;
  test::write_text(dir / "bad.txt", "ok\xFF");
  const auto utf8 = run_cli({"tokenize", "--model", kModel, "--file", (dir / "bad.txt").string()});
  EXPECT_EQ(utf8.exit_code, exit_code(ErrorKind::invalid_input));
  EXPECT_NE(utf8.err.find("invalid UTF-8 at byte 2"), std::string::npos) << utf8.err;

  const auto none = run_cli({"tokenize", "--model", kModel});
  EXPECT_EQ(none.exit_code, exit_code(ErrorKind::invalid_argument));
  const auto range = run_cli({"tokenize", "--model", kModel, "--decode", "1,678"});
  EXPECT_EQ(range.exit_code, exit_code(ErrorKind::invalid_argument));
  EXPECT_NE(range.err.find("678"), std::string::npos) << range.err;
  const auto pre = run_cli({"tokenize", "--model", kModel, "--text", "a", "--pretokenizer", "x"});
  EXPECT_EQ(pre.exit_code, exit_code(ErrorKind::invalid_argument));
}

} // namespace
} // namespace bitnet::tokenizer
