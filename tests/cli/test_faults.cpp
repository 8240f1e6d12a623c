// Faults and hostile inputs end to end through the built binary: each test is the exact
// reproducer of a finding of issue 13, and expects one `bitnet: error:` line and the
// documented exit code instead of a hang, a crash or a silent wrong answer.
#include <stdlib.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "support/cli_runner.hpp"
#include "support/gguf_rewrite.hpp"

namespace bitnet::test {
namespace {

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s)
    n += c == '\n';
  return n;
}

// A failed thread creation used to hang forever (pthread_cond_destroy while the pool's
// constructor unwound). BITNET_FAIL_THREAD_CREATE makes the creation of worker 2 fail.
TEST(Faults, FailedThreadCreationExitsWithTheCause) {
  ASSERT_EQ(setenv("BITNET_FAIL_THREAD_CREATE", "2", 1), 0);
  const CliResult r = run_cli({"run", "-m", tiny_model(), "-t", "4", "-p", "hi", "-n", "1",
                               "--no-echo", "--log-level", "error"});
  unsetenv("BITNET_FAIL_THREAD_CREATE");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err, "bitnet: error: cannot create worker thread 2 of 4: Resource temporarily "
                   "unavailable\n");
  EXPECT_EQ(r.out, "");
}

// -t above the usable CPUs runs (with a warning); above the shared limit it is refused.
TEST(Faults, ThreadCountLimitIsTheSessionLimit) {
  const CliResult ok =
      run_cli({"run", "-m", tiny_model(), "-t", "64", "-p", "hi", "-n", "2", "--temp", "0"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.err.find("warning: 64 threads on"), std::string::npos) << ok.err;
  const CliResult bad = run_cli({"run", "-m", tiny_model(), "-t", "513", "-p", "hi"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(count_lines(bad.err), 1) << bad.err;
}

// The demo model with `edit` applied, in `dir`.
std::string edited_model(const TempDir& dir, const GgufEdit& edit) {
  const std::string path = dir.file("edited.gguf");
  rewrite_gguf(tiny_model(), path, edit);
  return path;
}

GgufEdit set_key(const std::string& key, gguf::Value value) {
  GgufEdit e;
  e.set.emplace(key, std::move(value));
  return e;
}

void expect_one_error(const CliResult& r, int code, const std::string& message) {
  EXPECT_EQ(r.exit_code, code) << r.err;
  EXPECT_EQ(r.err, "bitnet: error: " + message + "\n");
  EXPECT_EQ(r.out, "");
}

// A Q4_0 tensor was "unknown ggml type id 2" (exit 4): now it is named as unsupported
// (exit 5), and `info` still describes the file.
TEST(Faults, Q4_0TensorIsUnsupportedAndDescribed) {
  TempDir dir;
  GgufEdit e;
  e.retype.emplace("blk.0.attn_q.weight", gguf::TensorType::Q4_0);
  const std::string path = edited_model(dir, e);
  expect_one_error(run_cli({"run", "-m", path, "-p", "hi", "-n", "1", "--log-level", "error"}), 5,
                   "tensor blk.0.attn_q.weight has type Q4_0, expected I2_S");
  const CliResult info = run_cli({"info", "-m", path, "--log-level", "error"});
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("runnable:      no: tensor blk.0.attn_q.weight has type Q4_0, "
                          "expected I2_S"),
            std::string::npos)
      << info.out;
  EXPECT_NE(info.out.find("Q4_0       1 tensors          36864 bytes"), std::string::npos)
      << info.out; // 256 x 256 / 32 blocks of 18 bytes
}

// block_count 5 with 6 layers of tensors used to run 5 layers.
TEST(Faults, BlockCountMustMatchTheLayerTensors) {
  TempDir dir;
  const std::string path =
      edited_model(dir, set_key("bitnet-b1.58.block_count", gguf::Value::u32(5)));
  expect_one_error(run_cli({"run", "-m", path, "-p", "hi", "-n", "1", "--log-level", "error"}), 4,
                   "tensor blk.5.attn_norm.weight is not in a layer below block_count 5");
}

// rope.freq_base = inf used to run.
TEST(Faults, InfiniteRopeBaseIsRefused) {
  TempDir dir;
  const std::string path =
      edited_model(dir, set_key("bitnet-b1.58.rope.freq_base",
                                gguf::Value::f32(std::numeric_limits<float>::infinity())));
  expect_one_error(run_cli({"run", "-m", path, "-p", "hi", "-n", "1", "--log-level", "error"}), 4,
                   "rope.freq_base inf is not a finite positive number");
}

// Tokenizer model `llama` on a BPE vocabulary used to print 'Ġ'.
TEST(Faults, LlamaTokenizerOnABpeVocabularyIsRefused) {
  TempDir dir;
  const std::string path =
      edited_model(dir, set_key("tokenizer.ggml.model", gguf::Value::string("llama")));
  const CliResult r = run_cli({"run", "-m", path, "-p", "hi", "-n", "1", "--log-level", "error"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("bitnet: error: tokenizer.ggml.model 'llama' (SentencePiece) does not "
                       "match the vocabulary: "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("spell a space as 'Ġ', none as '▁'"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

// A context_length of 2^20 sized a 3 GB KV cache with -c 0; now -c 0 stops at the documented
// default limit and says so.
TEST(Faults, DefaultContextIsCapped) {
  TempDir dir;
  const std::string path =
      edited_model(dir, set_key("bitnet-b1.58.context_length", gguf::Value::u32(1u << 20)));
  const CliResult r = run_cli({"run", "-m", path, "-p", "hi", "-n", "2", "--temp", "0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: the model's context length 1048576 is above the default limit "
                       "32768: using 32768 (ask for more with -c)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("| ctx 32768 |"), std::string::npos) << r.err;
}

// A model file truncated while in use used to kill the process with a bare SIGBUS. Whichever
// read meets the truncation first reports it: a weight read through the mapping (the SIGBUS
// guard, "(bus error reading it)") or a row read with pread (File::copy: a token's embedding
// row, the head's rows) that now lies past the end.
TEST(Faults, ModelTruncatedWhileInUse) {
  TempDir dir;
  const std::string path = dir.file("model.gguf");
  std::filesystem::copy_file(tiny_model(), path);
  const auto err_path = dir / "stderr";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  const std::string binary = bitnet_binary();
  // A long benchmark: it reads the whole model for every token through the mapping (the exact
  // head; the screened head reads its candidate rows with pread, gguf test CopyAfterTruncation).
  std::vector<std::string> args = {binary, "bench",  "-m", path, "-p",     "0",     "-n", "200",
                                   "-r",   "100000", "-t", "1",  "--head", "exact", "-v"};
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  // Truncate once the benchmark runs (its debug line), so the model is mapped and in use.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (slurp(err_path).find("bench: 1 threads") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::filesystem::resize_file(path, 1000000); // inside blk.0's tensors
  int status = 0;
  pid_t done = 0;
  while ((done = waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "still running after the truncation";
  }
  ASSERT_TRUE(WIFEXITED(status)) << "ended by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 4);
  const std::string err = slurp(err_path);
  const std::string line =
      "bitnet: error: " + path + ": the file changed or was truncated while in use";
  const auto ends_with = [&](const std::string& end) {
    return err.size() >= end.size() && err.compare(err.size() - end.size(), end.size(), end) == 0;
  };
  EXPECT_TRUE(ends_with("\n" + line + " (bus error reading it)\n") || ends_with("\n" + line + "\n"))
      << err;
}

} // namespace
} // namespace bitnet::test
