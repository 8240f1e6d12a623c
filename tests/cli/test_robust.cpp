// Issue 13's CLI findings, each as its reproducer: interrupts (a child process and kill),
// output files (atomic replace, FIFOs, /dev/stdout, symlinks, output onto an input, a failed
// write), checks before the first byte of stdout, stdout errors (/dev/full, a closed pipe)
// and valid UTF-8 on stdout. Interrupted quantize and perplexity runs; synth and quantize
// leave stdout alone.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "gguf/gguf.hpp"
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

// A running `bitnet` with stdout on a pipe we read (or, with `closed_stdout`, one whose read
// end is closed before it starts: every write fails with EPIPE) and stderr in a file.
struct Child {
  pid_t pid = -1;
  int out = -1; // read end of its stdout
  fs::path err;

  Child(const std::vector<std::string>& args, const fs::path& err_path, int stdin_fd = -1,
        bool closed_stdout = false)
      : err(err_path) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    if (closed_stdout) {
      ::close(fds[0]);
      fds[0] = -1;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (stdin_fd >= 0)
      posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
    else
      posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    if (fds[0] >= 0) posix_spawn_file_actions_addclose(&actions, fds[0]);
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

// Interrupts `child` with SIGINT once the temporary file of `out` exists and holds data;
// expects exit 130, no temporary file and no `out` afterwards.
void interrupt_while_writing(Child& child, const TempDir& dir, const fs::path& out) {
  const std::string prefix = out.filename().string() + ".tmp.";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool writing = false;
  while (!writing && std::chrono::steady_clock::now() < deadline) {
    std::error_code ec; // a temporary file may vanish between listing and stat
    for (const auto& entry : fs::directory_iterator(dir.path()))
      if (entry.path().filename().string().rfind(prefix, 0) == 0 && entry.file_size(ec) > 0)
        writing = true;
    if (!writing) std::this_thread::sleep_for(std::chrono::milliseconds(2));
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

// Finding 3: an interrupted synth leaves no OUT.tmp.PID.N behind and exits 130.
TEST(Interrupt, SynthRemovesItsTemporaryFile) {
  TempDir dir;
  const fs::path out = dir / "big.gguf";
  Child child({"synth", "--preset", "2b4t", "--seed", "1", "--out", out.string()}, dir / "err");
  interrupt_while_writing(child, dir, out);
}

// Must-have 2: an interrupted quantize leaves no temporary or partial output and exits 130.
// Its input: 16 F16 ternary linear weights of 4096 x 1024 (128 MiB), so the output (2 bits
// a weight) is still being written when the interrupt comes.
TEST(Interrupt, QuantizeRemovesItsTemporaryFile) {
  TempDir dir;
  const fs::path in = dir / "f16.gguf";
  {
    bitnet::gguf::Writer w;
    w.add_kv("general.architecture", bitnet::gguf::Value::string("bitnet-b1.58"));
    for (int i = 0; i < 16; ++i)
      w.add_tensor(fmt::format("blk.{}.ffn_up.weight", i), bitnet::gguf::TensorType::F16,
                   {4096, 1024});
    w.write(in.string(), [](std::size_t, const bitnet::gguf::TensorInfo& t,
                            bitnet::gguf::Writer::Sink& sink) {
      std::vector<uint8_t> bytes(t.nbytes, 0);
      for (size_t k = 0; k + 6 <= bytes.size(); k += 6) { // 1.0, 0, -1.0 (F16 3c00, 0, bc00)
        bytes[k + 1] = 0x3c;
        bytes[k + 5] = 0xbc;
      }
      sink.write(bytes);
    });
  }
  const fs::path out = dir / "i2s.gguf";
  Child child({"quantize", in.string(), out.string()}, dir / "err");
  interrupt_while_writing(child, dir, out);
}

// Must-have 2: an interrupted perplexity run exits 130 without the final estimate and
// leaves no file (it writes none; its directory holds only its input afterwards).
TEST(Interrupt, PerplexityExits130) {
  TempDir dir;
  const fs::path text = dir / "val.txt";
  fs::copy_file(data_path("real-tiny/val.txt"), text); // 395 chunks: long enough to interrupt
  Child child({"perplexity", "-m", tiny_model(), "-f", text.string()}, dir / "err");
  ASSERT_NE(child.read_at_least(4).find("[1]"), std::string::npos) << slurp(dir / "err");
  ::kill(child.pid, SIGINT);
  const std::string out = child.read_all();
  const auto [exit_code, signal] = child.wait();
  EXPECT_EQ(exit_code, 130) << slurp(dir / "err");
  EXPECT_EQ(signal, 0);
  EXPECT_EQ(out.find("Final estimate"), std::string::npos) << out;
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir.path()))
    files.push_back(entry.path().filename().string());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"err", "val.txt"}));
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

// `bitnet args...` with stdout on /dev/full; its exit status and stderr.
std::pair<int, std::string> run_to_full_device(const std::vector<std::string>& args) {
  std::string cmd = fmt::format("'{}'", bitnet_binary());
  for (const std::string& a : args)
    cmd += fmt::format(" '{}'", a);
  TempDir dir;
  cmd.append(" > /dev/full 2> '").append((dir / "err").string()).append("'");
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir / "err")};
}

// `bitnet args...` with stdout on a pipe nobody reads; its exit status (-1 for a signal,
// named in the text) and stderr.
std::pair<int, std::string> run_to_closed_pipe(const std::vector<std::string>& args) {
  TempDir dir;
  Child child(args, dir / "err", -1, true);
  const auto [code, signal] = child.wait();
  if (signal != 0) return {-1, fmt::format("died by signal {}", signal)};
  return {code, slurp(dir / "err")};
}

// The commands that write to stdout. perplexity: a 1-chunk run on the demo model's text.
std::vector<std::vector<std::string>> stdout_commands() {
  const std::string m = tiny_model();
  const std::string text = data_path("real-tiny/val.txt");
  return {
      {"run", "-m", m, "-p", "The jury", "-n", "64", "--ignore-eos"},
      {"info", "-m", m},
      {"info", "-m", m, "--json"},
      {"tokenize", "-m", m, "--text", "The jury said"},
      {"bench", "-m", m, "-p", "8", "-n", "4", "-r", "1"},
      {"bench", "-m", m, "-p", "8", "-n", "4", "-r", "1", "-o", "json"},
      {"perplexity", "-m", m, "-f", text, "--chunks", "1"},
      {"perplexity", "-m", m, "-f", text, "--chunks", "1", "--json"},
  };
}

// Finding 6: /dev/full is exit 3 with one message, in every command that writes to stdout.
TEST(Stdout, FullDeviceIsAnError) {
  for (const auto& args : stdout_commands()) {
    const auto [code, err] = run_to_full_device(args);
    EXPECT_EQ(code, 3) << args[0] << ": " << err;
    EXPECT_NE(err.find("bitnet: error: cannot write to stdout"), std::string::npos)
        << args[0] << ": " << err;
    EXPECT_EQ(error_lines(err), 1) << args[0] << ": " << err;
  }
}

// Finding 6: a reader that went away (EPIPE) ends every command quietly with status 0.
TEST(Stdout, ClosedPipeEndsQuietly) {
  for (const auto& args : stdout_commands()) {
    const auto [code, err] = run_to_closed_pipe(args);
    EXPECT_EQ(code, 0) << args[0] << ": " << err;
    EXPECT_EQ(error_lines(err), 0) << args[0] << ": " << err;
  }
}

// synth and quantize write nothing to stdout (their reports are logs on stderr), so a full or
// closed stdout does not concern them: they succeed and write their file.
TEST(Stdout, SynthAndQuantizeDoNotUseStdout) {
  TempDir dir;
  const std::string f16 = data_path("reference/models/A-f16.gguf");
  int n = 0;
  for (const auto run : {run_to_full_device, run_to_closed_pipe}) {
    const std::string synth = dir.file(fmt::format("synth{}.gguf", n));
    const std::string i2s = dir.file(fmt::format("i2s{}.gguf", n++));
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"synth", "--preset", "tiny", "--seed", "1", "--out", synth},
          std::vector<std::string>{"quantize", f16, i2s}}) {
      const auto [code, err] = run(args);
      EXPECT_EQ(code, 0) << args[0] << ": " << err;
      EXPECT_EQ(error_lines(err), 0) << args[0] << ": " << err;
    }
    // The files are whole: info reads them (the quantized one is runnable).
    EXPECT_EQ(run_cli({"info", synth}).exit_code, 0);
    const CliResult info = run_cli({"info", i2s});
    EXPECT_EQ(info.exit_code, 0) << info.err;
    EXPECT_NE(info.out.find("runnable:      yes"), std::string::npos) << info.out;
  }
}

} // namespace
