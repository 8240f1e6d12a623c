// Runs the built `bitnet` binary with arguments and optional stdin, capturing stdout, stderr
// and how it ended.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

extern char** environ;

namespace bitnet::test {

struct CliResult {
  int exit_code = -1; // -1 when ended by a signal
  int signal = 0;     // the signal, if any
  std::string out;    // stdout
  std::string err;    // stderr
};

inline std::string bitnet_binary() {
  return std::string(BITNET_BINARY_DIR) + "/tools/bitnet";
}
inline std::string data_path(const std::string& rel) {
  return std::string(BITNET_TEST_DATA_DIR) + "/" + rel;
}
inline std::string tiny_model() {
  return data_path("real-tiny/bitnet-tiny-brown.gguf");
}

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return std::move(s).str();
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline CliResult run_cli(const std::vector<std::string>& args, const std::string& stdin_text = "") {
  TempDir dir;
  const auto in_path = dir / "stdin";
  const auto out_path = dir / "stdout";
  const auto err_path = dir / "stderr";
  write_text(in_path, stdin_text);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  const std::string binary = bitnet_binary();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  CliResult r;
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + binary);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

} // namespace bitnet::test
