// Issue 13's CLI findings, each as its reproducer: interrupts (a child process and kill),
// output files (atomic replace, FIFOs, /dev/stdout, symlinks, output onto an input, a failed
// write), checks before the first byte of stdout, stdout errors (/dev/full, a closed pipe)
// and valid UTF-8 on stdout.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/cli_runner.hpp"
#include "support/json.hpp"

extern char** environ;

namespace {

using bitnet::test::bitnet_binary;
using bitnet::test::CliResult;
using bitnet::test::data_path;
using bitnet::test::Json;
using bitnet::test::read_json;
using bitnet::test::run_cli;
using bitnet::test::slurp;
using bitnet::test::TempDir;
using bitnet::test::tiny_model;
using bitnet::test::write_text;
namespace fs = std::filesystem;

// A running `bitnet` with stdout on a pipe we read and stderr in a file.
struct Child {
  pid_t pid = -1;
  int out = -1; // read end of its stdout
  fs::path err;

  Child(const std::vector<std::string>& args, const fs::path& err_path, int stdin_fd = -1)
      : err(err_path) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (stdin_fd >= 0)
      posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
    else
      posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    const std::string binary = bitnet_binary();
    std::vector<char*> argv{const_cast<char*>(binary.c_str())};
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    if (posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ) != 0)
      throw std::runtime_error("spawn");
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out = fds[0];
  }
  ~Child() {
    if (out >= 0) ::close(out);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }

  // Reads stdout until it holds at least `n` bytes (or EOF / 60 s).
  std::string read_at_least(size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (text.size() < n && std::chrono::steady_clock::now() < deadline) {
      pollfd p{out, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t got = ::read(out, buf, sizeof buf);
      if (got <= 0) break;
      text.append(buf, static_cast<size_t>(got));
    }
    return text;
  }
  std::string read_all() { return read_at_least(SIZE_MAX); }

  // Waits for the exit; {exit code or -1, signal or 0}.
  std::pair<int, int> wait() {
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1,
            WIFSIGNALED(status) ? WTERMSIG(status) : 0};
  }

  std::string text;
};

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80                 ? 1
               : c >= 0xC2 && c <= 0xDF ? 2
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4
                                        : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

int error_lines(const std::string& err) {
  int n = 0;
  for (size_t at = 0; (at = err.find("bitnet: error:", at)) != std::string::npos; ++at)
    ++n;
  return n;
}

// An endless greedy run (context shift, EOS ignored): only a signal ends it.
std::vector<std::string> endless_run(const fs::path& receipt) {
  return {"run",
          "-m",
          tiny_model(),
          "-p",
          "The jury said",
          "--temp",
          "0",
          "--ignore-eos",
          "--context-shift",
          "-c",
          "64",
          "--receipt",
          receipt.string()};
}

// Finding 3: SIGINT and SIGTERM end `run` after the current token with the timing block, a
// receipt whose stop_reason is "interrupted", complete UTF-8 on stdout and exit 130 / 143.
TEST(Interrupt, RunStopsCleanlyWithTimingsAndReceipt) {
  for (const auto& [sig, code] : {std::pair{SIGINT, 130}, std::pair{SIGTERM, 143}}) {
    TempDir dir;
    Child child(endless_run(dir / "r.json"), dir / "err");
    const std::string before = child.read_at_least(200); // well into generation
    ASSERT_GE(before.size(), 200u) << slurp(dir / "err");
    ::kill(child.pid, sig);
    const std::string out = child.read_all();
    const auto [exit_code, signal] = child.wait();
    const std::string err = slurp(dir / "err");
    EXPECT_EQ(signal, 0) << sig;
    EXPECT_EQ(exit_code, code) << err;
    EXPECT_NE(err.find("bitnet_perf:"), std::string::npos) << err;
    EXPECT_EQ(error_lines(err), 0) << err;
    EXPECT_TRUE(valid_utf8(out));
    EXPECT_EQ(out.rfind("The jury said", 0), 0u);
    const Json rec = read_json(dir / "r.json");
    EXPECT_EQ(rec.at("stop_reason").get<std::string>(), "interrupted");
    EXPECT_GT(rec.at("n_gen").get<int64_t>(), 64); // it went past a full context
  }
}

// Finding 3: an interrupted synth leaves no OUT.tmp.PID.N behind and exits 130.
TEST(Interrupt, SynthRemovesItsTemporaryFile) {
  TempDir dir;
  const fs::path out = dir / "big.gguf";
  Child child({"synth", "--preset", "2b4t", "--seed", "1", "--out", out.string()}, dir / "err");
  // Wait until the temporary file exists and grows, then interrupt.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool writing = false;
  while (!writing && std::chrono::steady_clock::now() < deadline) {
    for (const auto& entry : fs::directory_iterator(dir.path()))
      if (entry.path().filename().string().rfind("big.gguf.tmp.", 0) == 0 && entry.file_size() > 0)
        writing = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(writing) << slurp(dir / "err");
  ::kill(child.pid, SIGINT);
  const auto [exit_code, signal] = child.wait();
  EXPECT_EQ(exit_code, 130) << slurp(dir / "err");
  EXPECT_EQ(signal, 0);
  for (const auto& entry : fs::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();
  EXPECT_FALSE(fs::exists(out));
}

// Finding 4: --receipt onto the model is refused before any work; the model is untouched.
TEST(Files, OutputOntoAnInputIsRefused) {
  TempDir dir;
  const fs::path model = dir / "m.gguf";
  fs::copy_file(tiny_model(), model);
  const std::string bytes = slurp(model);
  const fs::path link = dir / "link.gguf";
  fs::create_symlink(model, link);
  for (const fs::path& target : {model, link}) {
    const CliResult r =
        run_cli({"run", "-m", model.string(), "-p", "x", "-n", "2", "--receipt", target.string()});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(error_lines(r.err), 1) << r.err;
    EXPECT_TRUE(r.out.empty());
    EXPECT_EQ(slurp(model), bytes);
  }
  // The prompt file too.
  const fs::path prompt = dir / "p.txt";
  write_text(prompt, "The jury");
  const CliResult r = run_cli({"run", "-m", model.string(), "-f", prompt.string(), "-n", "2",
                               "--receipt", prompt.string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(slurp(prompt), "The jury");
}

// Finding 4: a receipt is written to a temporary file and renamed; a write that fails (file
// size limit: EFBIG) leaves the previous receipt intact and no temporary file.
TEST(Files, FailedWriteKeepsThePreviousFile) {
  TempDir dir;
  const fs::path receipt = dir / "r.json";
  write_text(receipt, "OLD");
  const std::string cmd = "trap '' XFSZ; ulimit -f 1; exec '" + bitnet_binary() + "' run -m '" +
                          tiny_model() + "' -p hi -n 40 --ignore-eos --no-perf --receipt '" +
                          receipt.string() + "' > /dev/null 2> '" + (dir / "err").string() + "'";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3) << slurp(dir / "err");
  EXPECT_EQ(error_lines(slurp(dir / "err")), 1) << slurp(dir / "err");
  EXPECT_EQ(slurp(receipt), "OLD");
  for (const auto& entry : fs::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos);
}

// Finding 4: a symlink stays a symlink (its target is replaced); a FIFO is written into, not
// replaced; /dev/stdout keeps working and appends to stdout.
TEST(Files, SymlinksFifosAndDevStdout) {
  TempDir dir;
  const fs::path target = dir / "target.json";
  write_text(target, "OLD");
  const fs::path link = dir / "link.json";
  fs::create_symlink(target, link);
  CliResult r =
      run_cli({"run", "-m", tiny_model(), "-p", "x", "-n", "2", "--receipt", link.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(read_json(target).at("n_gen").get<int>(), 2);

  const fs::path fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string from_fifo;
  std::thread reader([&] { from_fifo = slurp(fifo); });
  r = run_cli({"run", "-m", tiny_model(), "-p", "x", "-n", "2", "--receipt", fifo.string()});
  reader.join();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(from_fifo.find("\"schema_version\""), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));

  r = run_cli(
      {"run", "-m", tiny_model(), "-p", "x", "-n", "2", "--temp", "0", "--receipt", "/dev/stdout"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const size_t json = r.out.find("{\n");
  ASSERT_NE(json, std::string::npos) << r.out;
  EXPECT_EQ(r.out.rfind("x", 0), 0u); // the text first, then the receipt
  EXPECT_EQ(Json::parse(r.out.substr(json)).at("n_gen").get<int>(), 2);
}

// Finding 6: every check happens before the first byte reaches stdout.
TEST(Stdout, InvalidInputLeavesStdoutEmpty) {
  TempDir dir;
  const fs::path huge = dir / "huge.txt";
  std::string words;
  while (words.size() < 5'000'000)
    words += "the jury said ";
  write_text(huge, words);
  const fs::path bad_utf8 = dir / "bad.txt";
  write_text(bad_utf8, "caf\xc3 \xff");
  const std::string m = tiny_model();
  const std::vector<std::pair<std::vector<std::string>, int>> cases = {
      {{"run", "-m", m, "-f", huge.string()}, 6},
      {{"run", "-m", m, "-f", bad_utf8.string()}, 7},
      {{"run", "-m", m, "-p", "x", "--temp", "nan"}, 2},
      {{"run", "-m", m, "-p", "x", "-c", "1"}, 6},
      {{"run", "-m", m, "-p", "x", "--stop", ""}, 2},
      {{"run", "-m", m, "-p", "x", "--repeat-penalty", "0"}, 2},
      {{"run", "-m", m, "-p", "x", "-s", "18446744073709551616"}, 2},
  };
  for (const auto& [args, code] : cases) {
    const CliResult r = run_cli(args);
    EXPECT_EQ(r.exit_code, code) << args[4] << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << args[4] << ": " << r.out.size() << " bytes on stdout";
    EXPECT_EQ(error_lines(r.err), 1) << r.err;
  }
}

// Finding 6: /dev/full is exit 3 with a message, in every command.
TEST(Stdout, FullDeviceIsAnError) {
  const std::string m = tiny_model();
  const std::vector<std::vector<std::string>> commands = {
      {"run", "-m", m, "-p", "The jury", "-n", "4"},
      {"info", "-m", m, "--json"},
      {"tokenize", "-m", m, "--text", "The jury said"},
      {"bench", "-m", m, "-p", "8", "-n", "4", "-r", "1", "-o", "json"},
  };
  for (const auto& args : commands) {
    std::string cmd = fmt::format("'{}'", bitnet_binary());
    for (const std::string& a : args)
      cmd += fmt::format(" '{}'", a);
    TempDir dir;
    cmd.append(" > /dev/full 2> '").append((dir / "err").string()).append("'");
    const int status = std::system(cmd.c_str());
    const std::string err = slurp(dir / "err");
    ASSERT_TRUE(WIFEXITED(status)) << args[0];
    EXPECT_EQ(WEXITSTATUS(status), 3) << args[0] << ": " << err;
    EXPECT_NE(err.find("cannot write to stdout"), std::string::npos) << args[0] << ": " << err;
  }
}

// Finding 6: a reader that went away (EPIPE) ends every command quietly with status 0.
TEST(Stdout, ClosedPipeEndsQuietly) {
  const std::string m = tiny_model();
  const std::vector<std::vector<std::string>> commands = {
      {"run", "-m", m, "-p", "The jury", "-n", "64", "--ignore-eos"},
      {"info", "-m", m},
      {"tokenize", "-m", m, "--text", "The jury said"},
      {"bench", "-m", m, "-p", "8", "-n", "4", "-r", "1"},
  };
  for (const auto& args : commands) {
    TempDir dir;
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    ::close(fds[0]); // nobody will read
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, (dir / "err").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const std::string binary = bitnet_binary();
    std::vector<char*> argv{const_cast<char*>(binary.c_str())};
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    ASSERT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    const std::string err = slurp(dir / "err");
    ASSERT_TRUE(WIFEXITED(status)) << args[0] << " died by signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0) << args[0] << ": " << err;
    EXPECT_EQ(error_lines(err), 0) << args[0] << ": " << err;
  }
}

} // namespace
