// `bitnet run` / `bitnet chat` end to end through the built binary: flags and defaults, the
// receipt's documented fields, greedy parity with bitnet.cpp's reference runs, --stop, EOS,
// the demo path, chat history in the KV cache, and the error exits.
#include <algorithm>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bitnet/bitnet.hpp"
#include "gguf/gguf.hpp"
#include "support/cli_runner.hpp"
#include "support/json.hpp"

namespace {

using bitnet::test::CliResult;
using bitnet::test::data_path;
using bitnet::test::ids_of;
using bitnet::test::Json;
using bitnet::test::read_json;
using bitnet::test::run_cli;
using bitnet::test::slurp;
using bitnet::test::TempDir;
using bitnet::test::tiny_model;
using bitnet::test::write_text;

std::string hex_to_bytes(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

int count_error_lines(const std::string& err) {
  int n = 0;
  size_t at = 0;
  while ((at = err.find("bitnet: error:", at)) != std::string::npos) {
    ++n;
    ++at;
  }
  return n;
}

// Every field README.md documents for receipts, with its JSON type.
void expect_receipt_schema(const Json& r) {
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r.at("schema_version").get<int64_t>(), 2);
  for (const char* key : {"build_commit", "build_type", "compiler", "cpu_info", "isa",
                          "stop_reason", "kv_type", "created_utc", "head"}) {
    ASSERT_TRUE(r.contains(key)) << key;
    EXPECT_TRUE(r.at(key).is_string()) << key;
  }
  for (const char* key :
       {"n_threads", "n_prompt", "n_gen", "peak_rss_bytes", "n_ctx", "n_batch", "n_past"}) {
    ASSERT_TRUE(r.contains(key)) << key;
    EXPECT_TRUE(r.at(key).is_number_integer()) << key;
  }
  const Json& model = r.at("model");
  EXPECT_TRUE(model.at("path").is_string());
  EXPECT_TRUE(model.at("architecture").is_string());
  EXPECT_GT(model.at("size").get<int64_t>(), 0);
  EXPECT_GT(model.at("n_params").get<int64_t>(), 0);
  const Json& t = r.at("timings_ms");
  for (const char* key : {"load", "tokenize", "prefill", "decode", "sample", "total"}) {
    ASSERT_TRUE(t.contains(key)) << key;
    EXPECT_TRUE(t.at(key).is_number()) << key;
    EXPECT_GE(t.at(key).get<double>(), 0.0) << key;
  }
  for (const char* key : {"decode_ms_per_token", "embedded_per_step", "prompt_ids", "generated_ids",
                          "head_rows_per_step"}) {
    ASSERT_TRUE(r.contains(key)) << key;
    EXPECT_TRUE(r.at(key).is_array()) << key;
  }
  const auto n_gen = static_cast<size_t>(r.at("n_gen").get<int64_t>());
  EXPECT_EQ(r.at("generated_ids").size(), n_gen);
  EXPECT_EQ(r.at("decode_ms_per_token").size(), n_gen);
  EXPECT_EQ(r.at("embedded_per_step").size(), n_gen);
  EXPECT_EQ(r.at("head_rows_per_step").size(), n_gen);
  for (const Json& rows : r.at("head_rows_per_step")) {
    EXPECT_GE(rows.get<int64_t>(), 1);
    EXPECT_LE(rows.get<int64_t>(), r.at("model").at("n_vocab").get<int64_t>());
  }
  for (const Json& e : r.at("embedded_per_step"))
    EXPECT_EQ(e.get<int64_t>(), 1);
  EXPECT_EQ(r.at("prompt_ids").size(), static_cast<size_t>(r.at("n_prompt").get<int64_t>()));
  EXPECT_GT(r.at("peak_rss_bytes").get<int64_t>(), 0);
}

TEST(CliRun, HelpListsLlamaCppDefaults) {
  const CliResult r = run_cli({"run", "--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* text : {"--n-predict",
                           "=-1",
                           "--temp",
                           "0.8",
                           "--top-k",
                           "40",
                           "--top-p",
                           "0.95",
                           "--min-p",
                           "0.05",
                           "--repeat-penalty",
                           "--repeat-last-n",
                           "64",
                           "--batch-size",
                           "2048",
                           "--ubatch-size",
                           "512",
                           "--seed",
                           "-1",
                           "--ignore-eos",
                           "no logit",
                           "--stop",
                           "--no-bos",
                           "--no-special",
                           "--no-echo",
                           "--pretokenizer",
                           "--kv-type",
                           "--receipt",
                           "--conversation"}) {
    EXPECT_NE(r.out.find(text), std::string::npos) << text;
  }
}

TEST(CliRun, ReceiptHasDocumentedFieldsAndDefaults) {
  TempDir dir;
  const auto receipt = dir / "r.json";
  const CliResult r = run_cli({"run", "-m", tiny_model(), "-p", "The jury said", "-n", "5", "-s",
                               "7", "--receipt", receipt.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json rec = read_json(receipt);
  expect_receipt_schema(rec);
  const Json& p = rec.at("params");
  EXPECT_EQ(p.at("n_predict").get<int64_t>(), 5);
  EXPECT_NEAR(p.at("temp").get<double>(), 0.8, 1e-6);
  EXPECT_EQ(p.at("top_k").get<int64_t>(), 40);
  EXPECT_NEAR(p.at("top_p").get<double>(), 0.95, 1e-6);
  EXPECT_NEAR(p.at("min_p").get<double>(), 0.05, 1e-6);
  EXPECT_NEAR(p.at("repeat_penalty").get<double>(), 1.0, 1e-6);
  EXPECT_EQ(p.at("repeat_last_n").get<int64_t>(), 64);
  EXPECT_EQ(p.at("seed").get<int64_t>(), 7);
  EXPECT_FALSE(p.at("ignore_eos").get<bool>());
  EXPECT_EQ(rec.at("n_ctx").get<int64_t>(), 256);    // -c 0: the model's context length
  EXPECT_EQ(rec.at("n_batch").get<int64_t>(), 256);  // -b 2048, clamped to the context
  EXPECT_EQ(rec.at("n_ubatch").get<int64_t>(), 256); // -ub 512, clamped to -b
  EXPECT_EQ(rec.at("kv_type").get<std::string>(), "f16");
  const auto cores = std::max(1u, std::thread::hardware_concurrency());
  EXPECT_EQ(rec.at("n_threads").get<int64_t>(), static_cast<int64_t>(cores));
  EXPECT_EQ(rec.at("model").at("architecture").get<std::string>(), "bitnet-b1.58");
  EXPECT_EQ(rec.at("model").at("size").get<int64_t>(), 2720128);
  EXPECT_EQ(rec.at("prompt_ids").front().get<int64_t>(), 2707); // BOS
  // Output: the prompt echoed, then exactly the detokenized generated ids.
  const auto model = bitnet::Model::load(tiny_model());
  const auto gen = ids_of(rec.at("generated_ids"));
  if (rec.at("stop_reason").get<std::string>() == "n_predict") {
    EXPECT_EQ(rec.at("n_gen").get<int64_t>(), 5);
    EXPECT_EQ(r.out, "The jury said" + model->tokenizer().detokenize(gen));
  }
  EXPECT_NE(r.err.find("bitnet_perf:"), std::string::npos);
  EXPECT_NE(r.err.find("prompt eval time"), std::string::npos);
  EXPECT_NE(r.err.find("peak memory"), std::string::npos);
}

// --head: the screened head (the default) and the exact one print the same text and say which
// they used; a screened step reads the screen and its candidate rows, not the whole head.
TEST(CliRun, HeadModesGiveTheSameTextAndReceiptsSayWhich) {
  TempDir dir;
  Json rec[2];
  std::string out[2];
  const char* modes[2] = {"screened", "exact"};
  for (int i = 0; i < 2; ++i) {
    const auto receipt = dir / (std::string(modes[i]) + ".json");
    const CliResult r =
        run_cli({"run", "-m", tiny_model(), "-p", "The jury said", "-n", "24", "-s", "5",
                 "--ignore-eos", "--head", modes[i], "--receipt", receipt.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find(std::string("head ") + modes[i]), std::string::npos) << r.err;
    rec[i] = read_json(receipt);
    out[i] = r.out;
    EXPECT_EQ(rec[i].at("head").get<std::string>(), modes[i]);
  }
  EXPECT_EQ(out[0], out[1]);
  EXPECT_EQ(ids_of(rec[0].at("generated_ids")), ids_of(rec[1].at("generated_ids")));
  const int64_t n_vocab = rec[1].at("model").at("n_vocab").get<int64_t>();
  for (const Json& rows : rec[1].at("head_rows_per_step"))
    EXPECT_EQ(rows.get<int64_t>(), n_vocab);
  for (const Json& rows : rec[0].at("head_rows_per_step"))
    EXPECT_LT(rows.get<int64_t>(), n_vocab / 16); // top-k 40 of 2717 rows: screened, no fallback
  EXPECT_LT(rec[0].at("decode_bytes_per_token").get<double>(),
            rec[1].at("decode_bytes_per_token").get<double>());

  const CliResult bad = run_cli({"run", "-m", tiny_model(), "-p", "x", "--head", "approx"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("bitnet: error: --head"), std::string::npos) << bad.err;
}

TEST(CliRun, SameSeedSameTextRandomSeedIsLogged) {
  const std::vector<std::string> args = {"run", "-m",     tiny_model(), "-p", "The jury", "-n",
                                         "12",  "--temp", "1.5",        "-s", "1234"};
  const CliResult a = run_cli(args);
  const CliResult b = run_cli(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  const CliResult c = run_cli({"run", "-m", tiny_model(), "-p", "The jury", "-n", "2"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.err.find("seed: "), std::string::npos);
}

TEST(CliRun, FlagsAfterTheSubcommandReachTheRootApp) {
  TempDir dir;
  const auto receipt = dir / "r.json";
  const CliResult r = run_cli({"run", "-m", tiny_model(), "-p", "The", "-n", "2", "--isa", "scalar",
                               "--log-level", "warn", "--receipt", receipt.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_json(receipt).at("isa").get<std::string>(), "scalar");
  // --log-level warn hides the info lines but keeps the timing block; --no-perf drops it.
  EXPECT_EQ(r.err.find("info:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bitnet_perf:"), std::string::npos) << r.err;
  const CliResult quiet = run_cli({"run", "-m", tiny_model(), "-p", "The", "-n", "2", "--no-perf"});
  ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.err.find("bitnet_perf:"), std::string::npos) << quiet.err;
}

// Greedy with EOG ignored is exactly bitnet.cpp's reference run (its logits are unchanged).
TEST(CliRun, GreedyMatchesBitnetCppReference) {
  const Json ref = read_json(data_path("real-tiny/reference.json"));
  const Json& run = ref.at("runs").front(); // brown_jury: no near-tie
  ASSERT_EQ(run.at("prompt_name").get<std::string>(), "brown_jury");
  TempDir dir;
  const auto prompt = dir / "prompt.txt";
  write_text(prompt, hex_to_bytes(run.at("prompt_utf8_hex").get<std::string>()));
  const auto receipt = dir / "r.json";
  const CliResult r =
      run_cli({"run", "-m", tiny_model(), "-f", prompt.string(), "--temp", "0", "-n", "48",
               "--ignore-eos", "-c", "256", "--no-echo", "--receipt", receipt.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json rec = read_json(receipt);
  EXPECT_EQ(ids_of(rec.at("prompt_ids")), ids_of(run.at("prompt_ids")));
  EXPECT_EQ(ids_of(rec.at("generated_ids")), ids_of(run.at("gen_ids")));
  EXPECT_EQ(r.out, hex_to_bytes(run.at("gen_text_utf8_hex").get<std::string>()));
}

// Model A's pub_long run generates <|eot_id|> at step 8: without --ignore-eos generation
// stops there; with it, generation continues as in the reference.
TEST(CliRun, EndOfGenerationStopsUnlessIgnored) {
  const Json ref = read_json(data_path("reference/A.json"));
  const Json* run = nullptr;
  for (const Json& r : ref.at("runs"))
    if (r.at("prompt_name").get<std::string>() == "pub_long") run = &r;
  ASSERT_NE(run, nullptr);
  const std::vector<int32_t> gen = ids_of(run->at("gen_ids"));
  ASSERT_EQ(gen[8], 677);
  TempDir dir;
  const auto prompt = dir / "prompt.txt";
  write_text(prompt, hex_to_bytes(run->at("prompt_utf8_hex").get<std::string>()));
  const std::string model = data_path("reference/models/A.gguf");

  const auto stopped = dir / "stopped.json";
  CliResult r = run_cli({"run", "-m", model, "-f", prompt.string(), "--temp", "0", "-n", "48", "-c",
                         "1024", "--receipt", stopped.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json rec = read_json(stopped);
  EXPECT_EQ(rec.at("stop_reason").get<std::string>(), "eog");
  EXPECT_EQ(ids_of(rec.at("generated_ids")), std::vector<int32_t>(gen.begin(), gen.begin() + 9));

  const auto ignored = dir / "ignored.json";
  r = run_cli({"run", "-m", model, "-f", prompt.string(), "--temp", "0", "-n", "48", "-c", "1024",
               "--ignore-eos", "--receipt", ignored.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rec = read_json(ignored);
  EXPECT_EQ(rec.at("stop_reason").get<std::string>(), "n_predict");
  EXPECT_EQ(ids_of(rec.at("generated_ids")), gen);
}

TEST(CliRun, StopStringEndsOutputBeforeIt) {
  const std::vector<std::string> base = {
      "run",    "-m", tiny_model(), "-p", "The jury said it did find that",
      "--temp", "0",  "-n",         "48", "--ignore-eos"};
  const CliResult full = run_cli(base);
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const std::string stop = " musicians";
  const size_t at = full.out.find(stop);
  ASSERT_NE(at, std::string::npos) << full.out;

  TempDir dir;
  const auto receipt = dir / "r.json";
  std::vector<std::string> args = base;
  for (const std::string& a :
       {std::string("--stop"), stop, std::string("--stop"), std::string("zzz-never"),
        std::string("--receipt"), receipt.string()})
    args.push_back(a);
  const CliResult r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, full.out.substr(0, at));
  const Json rec = read_json(receipt);
  EXPECT_EQ(rec.at("stop_reason").get<std::string>(), "stop_string");
  EXPECT_LT(rec.at("n_gen").get<int64_t>(), 48);
  EXPECT_EQ(rec.at("params").at("stop").size(), 2u);
}

TEST(CliRun, DemoModelAndPromptWhenNoneGiven) {
  const CliResult r = run_cli({"run", "-n", "6", "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("The jury said it did find that the", 0), 0u) << r.out;
  EXPECT_NE(r.err.find("demo model"), std::string::npos);
  EXPECT_NE(r.err.find("no prompt given"), std::string::npos);
}

// llama.cpp's -f/--file drops one trailing '\n' from the file (common/arg.cpp), so the same
// prompt file gives llama-cli's tokens: a file "T\n\n" is the prompt "T\n", from -f FILE,
// -f - and piped stdin alike.
TEST(CliRun, PromptFileLosesOneTrailingNewlineAsLlamaCliReadsIt) {
  TempDir dir;
  const auto prompt = dir / "prompt.txt";
  write_text(prompt, "The jury said\n\n");
  const auto ids = [&](std::vector<std::string> source, const std::string& in) {
    const auto receipt = dir / "r.json";
    std::vector<std::string> args = {"run", "-m",        tiny_model(),    "-n", "1", "--temp",
                                     "0",   "--receipt", receipt.string()};
    args.insert(args.end(), source.begin(), source.end());
    const CliResult r = run_cli(args, in);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ids_of(read_json(receipt).at("prompt_ids"));
  };
  const auto expected = ids({"-p", "The jury said\\n"}, "");
  const auto without = ids({"-p", "The jury said"}, "");
  ASSERT_NE(expected, without); // the newline is a token of its own here
  EXPECT_EQ(ids({"-f", prompt.string()}, ""), expected);
  EXPECT_EQ(ids({"-f", "-"}, "The jury said\n\n"), expected);
  EXPECT_EQ(ids({}, "The jury said\n\n"), expected);
}

TEST(CliChat, TurnsContinueTheCacheWithoutRePrefill) {
  TempDir dir;
  const auto receipt = dir / "r.json";
  const CliResult r = run_cli({"chat", "-m", tiny_model(), "--temp", "0", "-n", "6", "--system",
                               "Be brief.", "--receipt", receipt.string()},
                              "Hello there\n\nWhat did the jury say?\n/exit\nignored\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json rec = read_json(receipt);
  expect_receipt_schema(rec);
  EXPECT_EQ(rec.at("n_gen").get<int64_t>(), 12); // two turns of 6; the line after /exit is not read
  // Every token was evaluated exactly once: prompts of both turns plus the replies.
  EXPECT_EQ(rec.at("n_past").get<int64_t>(),
            rec.at("n_prompt").get<int64_t>() + rec.at("n_gen").get<int64_t>());
  // The system prompt is evaluated alone first (it stays when old turns go), then each turn
  // only adds the text its message adds to the rendered history.
  const auto model = bitnet::Model::load(tiny_model());
  const std::vector<bitnet::ChatMessage> system = {{"system", "Be brief."}};
  const std::vector<bitnet::ChatMessage> first = {{"system", "Be brief."}, {"user", "Hello there"}};
  const std::string system_text = model->render_chat(system, false);
  std::vector<int32_t> first_ids = model->tokenizer().tokenize(system_text, true, true);
  const auto user_ids = model->tokenizer().tokenize(
      model->render_chat(first, true).substr(system_text.size()), false, true);
  first_ids.insert(first_ids.end(), user_ids.begin(), user_ids.end());
  EXPECT_GT(rec.at("n_prompt").get<int64_t>(), static_cast<int64_t>(first_ids.size()));
  const auto prompt_ids = ids_of(rec.at("prompt_ids"));
  EXPECT_TRUE(std::equal(first_ids.begin(), first_ids.end(), prompt_ids.begin()));
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2);
}

TEST(CliRun, ConversationFlagIsChat) {
  const CliResult r =
      run_cli({"run", "--conversation", "-m", tiny_model(), "--temp", "0", "-n", "3"}, "Hi\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
}

std::string repeated(const std::string& text, int n) {
  std::string out;
  for (int i = 0; i < n; ++i)
    out += text;
  return out;
}

struct ErrorCase {
  const char* name;
  std::vector<std::string> args;
  int exit_code;
  const char* message = nullptr; // text the error line must contain, if given
};

TEST(CliRun, ErrorsAreOneLineWithDocumentedExitCodes) {
  TempDir dir;
  const auto garbage = dir / "garbage.gguf";
  write_text(garbage, "this is not a GGUF file at all, just text");
  const auto empty = dir / "empty.txt";
  write_text(empty, "");
  // A well-formed GGUF of an architecture this engine does not run.
  const auto gpt2 = dir / "gpt2.gguf";
  bitnet::gguf::Writer writer;
  writer.add_kv("general.architecture", bitnet::gguf::Value::string("gpt2"));
  writer.add_tensor("token_embd.weight", bitnet::gguf::TensorType::F32, {32, 8});
  writer.write(gpt2.string(),
               [](size_t, const bitnet::gguf::TensorInfo& info, bitnet::gguf::Writer::Sink& sink) {
                 const std::vector<uint8_t> zeros(info.nbytes, 0);
                 sink.write(zeros);
               });
  const std::string m = tiny_model();
  const std::vector<ErrorCase> cases = {
      {"unsupported architecture", {"run", "-m", gpt2.string(), "-p", "x"}, 5},
      {"missing model", {"run", "-m", (dir / "nope.gguf").string(), "-p", "x"}, 3},
      {"model is a directory", {"run", "-m", data_path("real-tiny"), "-p", "x"}, 3},
      {"not a gguf", {"run", "-m", garbage.string(), "-p", "x"}, 4},
      {"bad top-p", {"run", "-m", m, "-p", "x", "--top-p", "2"}, 2},
      {"bad n-predict", {"run", "-m", m, "-p", "x", "-n", "-5"}, 2},
      {"bad repeat penalty", // not CLI11's range up to DBL_MAX
       {"run", "-m", m, "-p", "x", "--repeat-penalty", "0"},
       2,
       "must be a number > 0, not 0"},
      {"bad threads", {"run", "-m", m, "-p", "x", "-t", "0"}, 2},
      {"not a number", {"run", "-m", m, "-p", "x", "--temp", "hot"}, 2},
      {"unknown flag", {"run", "-m", m, "-p", "x", "--frobnicate"}, 2},
      {"bad kv type", {"run", "-m", m, "-p", "x", "--kv-type", "q4"}, 2},
      {"bad pretokenizer", {"run", "-m", m, "-p", "x", "--pretokenizer", "gpt9"}, 2},
      {"bad isa", {"run", "-m", m, "-p", "x", "--isa", "mmx"}, 2},
      {"no prompt with a model", {"run", "-m", m}, 2},
      {"prompt and file", {"run", "-m", m, "-p", "x", "-f", empty.string()}, 2},
      {"empty prompt", {"run", "-m", m, "-p", ""}, 7},
      {"empty prompt file", {"run", "-m", m, "-f", empty.string()}, 7},
      {"missing prompt file", {"run", "-m", m, "-f", (dir / "nope.txt").string()}, 3},
      {"prompt beyond context", {"run", "-m", m, "-p", repeated("the jury said ", 100)}, 6},
      {"ctx beyond model", {"run", "-m", m, "-p", "x", "-c", "100000", "-n", "1"}, 2},
      {"unwritable receipt",
       {"run", "-m", m, "-p", "x", "-n", "1", "--receipt", (dir / "no/such/dir/r.json").string()},
       3},
  };
  for (const ErrorCase& c : cases) {
    const CliResult r = run_cli(c.args);
    EXPECT_EQ(r.signal, 0) << c.name;
    EXPECT_EQ(r.exit_code, c.exit_code) << c.name << ": " << r.err;
    EXPECT_EQ(count_error_lines(r.err), 1) << c.name << ": " << r.err;
    if (c.message) { // braces: EXPECT_NE is an if/else
      EXPECT_NE(r.err.find(c.message), std::string::npos) << c.name << ": " << r.err;
    }
  }
}

// BITNET_ISA chooses the kernel variant of the whole process (the choice itself is tested
// for every value in test_kernels); an unknown name is a bad-option error.
TEST(CliRun, BitnetIsaEnvironmentChoosesTheVariant) {
  struct EnvGuard {
    EnvGuard(const char* value) { setenv("BITNET_ISA", value, 1); }
    ~EnvGuard() { unsetenv("BITNET_ISA"); }
  };
  {
    EnvGuard env("scalar");
    const CliResult r = run_cli({"run", "-m", tiny_model(), "-p", "hi", "-n", "1", "--temp", "0"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("isa scalar |"), std::string::npos) << r.err;
  }
  {
    EnvGuard env("avx9000");
    const CliResult r = run_cli({"run", "-m", tiny_model(), "-p", "hi", "-n", "1"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("avx9000"), std::string::npos) << r.err;
  }
}

} // namespace
