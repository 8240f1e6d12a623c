// Issue 14's findings as a llama-cli user meets them: llama.cpp's multi-letter flags, -fa and
// -ngl, did-you-mean messages, help text, repeated flags, escapes in -p, stdin as the prompt,
// the full-context notice, --context-shift, the double BOS warning, --no-perf, chat's
// commands and a real load time when no turn was made.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/cli_runner.hpp"
#include "support/json.hpp"

namespace {

using bitnet::test::CliResult;
using bitnet::test::Json;
using bitnet::test::read_json;
using bitnet::test::run_cli;
using bitnet::test::slurp;
using bitnet::test::TempDir;
using bitnet::test::tiny_model;
using bitnet::test::write_text;

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Messages, UnknownCommandAndOptionSuggestTheClosest) {
  CliResult r = run_cli({"rnu"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "bitnet: error: unknown command 'rnu' (did you mean 'run'?)\n");
  r = run_cli({"run", "--tmep", "0.5"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "bitnet: error: unknown option '--tmep' (did you mean '--temp'?)"))
      << r.err;
  r = run_cli({"--log-level", "warn", "chta", "-m", tiny_model()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "unknown command 'chta' (did you mean 'chat'?)")) << r.err;
  r = run_cli({"xyzzy"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "unknown command 'xyzzy' (commands: run, chat,")) << r.err;
}

TEST(Messages, HelpHasNoTypeRangeNoiseAndListsGlobalOptions) {
  for (const char* cmd : {"run", "chat", "bench", "perplexity", "info", "tokenize"}) {
    const CliResult r = run_cli({cmd, "--help"});
    ASSERT_EQ(r.exit_code, 0) << cmd;
    EXPECT_FALSE(has(r.out, " in [")) << cmd << ":\n" << r.out;
    EXPECT_FALSE(has(r.out, "INT:")) << cmd << ":\n" << r.out;
    EXPECT_FALSE(has(r.out, "FLOAT:")) << cmd << ":\n" << r.out;
    EXPECT_TRUE(has(r.out, "--log-level")) << cmd;
    EXPECT_TRUE(has(r.out, "--isa")) << cmd;
  }
  // The help's thread range is the enforced one.
  const CliResult help = run_cli({"run", "--help"});
  EXPECT_TRUE(has(help.out, "1 to 512")) << help.out;
  EXPECT_EQ(run_cli({"run", "-m", tiny_model(), "-p", "x", "-t", "513"}).exit_code, 2);
}

TEST(Flags, LlamaCppMultiLetterFlagsAreRewritten) {
  // -cnv -sys: chat with a system prompt; -ub, -tb, -st accepted.
  TempDir dir;
  const auto receipt = dir / "r.json";
  CliResult r =
      run_cli({"run", "-cnv", "-m", tiny_model(), "-sys", "Be brief.", "-n", "3", "--temp", "0",
               "-ub", "64", "-tb", "2", "-st", "--receipt", receipt.string()},
              "Hi\nHello again\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json rec = read_json(receipt);
  EXPECT_EQ(rec.at("n_gen").get<int>(), 3); // -st: one turn only
  EXPECT_EQ(rec.at("n_ubatch").get<int>(), 64);
  // -fa and -ngl N: a warning each, then the run.
  r = run_cli({"run", "-m", tiny_model(), "-p", "The", "-n", "2", "-fa", "-ngl", "99"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.err, "warn: -fa ignored")) << r.err;
  EXPECT_TRUE(has(r.err, "warn: -ngl ignored")) << r.err;
  // serve -np N is --parallel N: 3 slots of a 999-token context each exceed the demo model's
  // trained 256, refused before listening (the message counts the slots -np asked for).
  r = run_cli({"serve", "-m", tiny_model(), "-np", "3", "-c", "2997", "--log-level", "error"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "bitnet: error: -c 2997 gives each of 3 slots more than the model's context "
                   "length 256\n");
  // -hf: no downloads, a clear error (it used to print the help and exit 0).
  r = run_cli({"run", "-hf", "microsoft/bitnet-b1.58-2B-4T-gguf"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "does not download models")) << r.err;
}

TEST(Flags, LastValueWinsRepeatableFlagsAccumulate) {
  TempDir dir;
  const auto receipt = dir / "r.json";
  const CliResult r = run_cli({"run",      "-m",           tiny_model(), "-p",
                               "The jury", "-n",           "9",          "-n",
                               "3",        "--temp",       "0.5",        "--temp",
                               "0",        "--ignore-eos", "--stop",     "zzz",
                               "-r",       "qqq",          "--receipt",  receipt.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json rec = read_json(receipt);
  EXPECT_EQ(rec.at("n_gen").get<int>(), 3);
  EXPECT_EQ(rec.at("params").at("temp").get<double>(), 0.0);
  EXPECT_EQ(rec.at("params").at("stop"), Json::parse(R"(["zzz","qqq"])"));
}

TEST(Flags, EscapesInThePromptUnlessNoEscape) {
  CliResult r = run_cli({"run", "-m", tiny_model(), "-p", "a\\nb\\tc\\\\d", "-n", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("a\nb\tc\\d", 0), 0u) << r.out;
  r = run_cli({"run", "-m", tiny_model(), "-p", "a\\nb", "-n", "1", "--no-escape"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("a\\nb", 0), 0u) << r.out;
}

TEST(Flags, StdinIsThePrompt) {
  CliResult r = run_cli({"run", "-m", tiny_model(), "-n", "2", "--temp", "0"}, "The jury said");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("The jury said", 0), 0u) << r.out;
  r = run_cli({"run", "-m", tiny_model(), "-f", "-", "-n", "2", "--temp", "0"}, "The jury");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("The jury", 0), 0u) << r.out;
}

TEST(Context, FullContextStopsWithANoticeUnlessShifted) {
  TempDir dir;
  const auto receipt = dir / "r.json";
  // The finding: a 148-token prompt with the default -n on -c 256 was an error after echoing.
  std::string prompt;
  while (prompt.size() < 600)
    prompt += "The jury said it did find that the city was fine. ";
  CliResult r = run_cli({"run", "-m", tiny_model(), "-p", prompt, "--temp", "0", "--ignore-eos",
                         "--receipt", receipt.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json rec = read_json(receipt);
  EXPECT_EQ(rec.at("stop_reason").get<std::string>(), "ctx_full");
  EXPECT_EQ(rec.at("n_past").get<int>(), 256);
  EXPECT_EQ(rec.at("params").at("n_predict").get<int>(), -1);
  EXPECT_TRUE(has(r.err, "context full")) << r.err;

  // --context-shift goes on past the context.
  r = run_cli({"run", "-m", tiny_model(), "-p", "The jury", "-c", "64", "-n", "200", "--temp", "0",
               "--ignore-eos", "--context-shift", "--keep", "2", "--receipt", receipt.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rec = read_json(receipt);
  EXPECT_EQ(rec.at("stop_reason").get<std::string>(), "n_predict");
  EXPECT_EQ(rec.at("n_gen").get<int>(), 200);
  EXPECT_LE(rec.at("n_past").get<int>(), 64);
}

TEST(Flags, DoubleBosIsWarned) {
  const CliResult r =
      run_cli({"run", "-m", tiny_model(), "-p", "<|begin_of_text|>The jury", "-n", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.err, "double BOS")) << r.err;
}

TEST(Chat, CommandsAndARealLoadTimeWithoutTurns) {
  TempDir dir;
  const auto transcript = dir / "t.json";
  CliResult r =
      run_cli({"chat", "-m", tiny_model(), "-n", "3", "--temp", "0", "--system", "S"},
              "/help\nHello \\\nthere\n/clear\nHi\n/save " + transcript.string() + "\n/exit\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.err, "/clear")) << r.err; // /help went to stderr, not the model
  const Json t = read_json(transcript);
  ASSERT_EQ(t.at("messages").size(), 3u); // system, then only the turn after /clear
  EXPECT_EQ(t.at("messages")[1].at("content").get<std::string>(), "Hi");
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2); // two replies

  // A continued line is one message.
  r = run_cli({"chat", "-m", tiny_model(), "-n", "2", "--temp", "0"},
              "Hello \\\nthere\n/save " + transcript.string() + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_json(transcript).at("messages")[0].at("content").get<std::string>(),
            "Hello \nthere");

  // -v: the formatted text and the token count of every turn.
  r = run_cli({"-v", "chat", "-m", tiny_model(), "-n", "2", "--temp", "0"}, "Hi\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.err, "turn 1: ")) << r.err;
  EXPECT_TRUE(has(r.err, "User: Hi")) << r.err;

  r = run_cli({"chat", "-m", tiny_model()}, "/exit\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.err, "load time =")) << r.err;
  EXPECT_FALSE(has(r.err, "load time =       0.00 ms")) << r.err;
}

} // namespace
