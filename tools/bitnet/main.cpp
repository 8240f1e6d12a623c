// bitnet: command-line entry point. Text goes to stdout, logs and errors to stderr.
#include <csignal>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "bitnet/build_info.hpp"
#include "bitnet/error.hpp"
#include "bitnet/system.hpp"
#include "cli_common.hpp"
#include "commands.hpp"

namespace {

// Help without CLI11's validator text ("INT:INT in [-1 - 9223372036854775807]"): option
// descriptions state the ranges that matter, in the words the checks use.
class Formatter : public CLI::Formatter {
public:
  std::string make_option_opts(const CLI::Option* opt) const override {
    if (opt->get_type_size() == 0) return {};
    std::string type = opt->get_type_name();
    type = type.substr(0, type.find(':'));
    std::string out = type.empty() ? "" : " " + type;
    if (!opt->get_default_str().empty()) out += "=" + opt->get_default_str();
    if (opt->get_expected_max() == CLI::detail::expected_max_vector_size) out += " (repeatable)";
    return out;
  }
};

int fail(const std::string& message) {
  std::fprintf(stderr, "bitnet: error: %s\n", message.c_str());
  return bitnet::exit_code(bitnet::ErrorKind::invalid_argument);
}

} // namespace

int main(int argc, char** argv) {
  // A closed pipe must be a write error (EPIPE) the commands handle, not a silent death.
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"bitnet: BitNet b1.58 ternary LLM inference on CPUs (GGUF, bitnet.cpp compatible)",
               "bitnet"};
  app.formatter(std::make_shared<Formatter>());
  app.require_subcommand(1);
  // llama-cli keeps the last value of a repeated flag; list options (--stop) take them all.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", std::string(bitnet::build::kVersion) + " (" +
                                        bitnet::build::kCommit + ", " + bitnet::build::kBuildType +
                                        ")");
  bool verbose = false;
  std::string log_level;
  std::string isa;
  app.add_flag("-v,--verbose", verbose, "Debug logging")->configurable(false);
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|critical|off");
  app.add_option(
      "--isa", isa,
      "Force a kernel variant: scalar|avx2|avxvnni|avx512|amx|neon|neon_dotprod (also BITNET_ISA)");
  app.fallthrough();

  std::vector<std::pair<CLI::App*, bitnet::cli::CommandFn>> commands;
  auto add = [&](bitnet::cli::CommandFn (*fn)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    auto run = fn(app);
    CLI::App* sub = app.get_subcommands({}).at(before);
    sub->footer("Global options (before or after the command): -v/--verbose, --log-level LEVEL, "
                "--isa NAME, --version");
    commands.emplace_back(sub, std::move(run));
  };
  add(bitnet::cli::add_run);
  add(bitnet::cli::add_chat);
  add(bitnet::cli::add_bench);
  add(bitnet::cli::add_perplexity);
  add(bitnet::cli::add_serve);
  add(bitnet::cli::add_info);
  add(bitnet::cli::add_tokenize);
  add(bitnet::cli::add_synth);
  add(bitnet::cli::add_quantize);

  std::vector<std::string> args;
  try {
    args = bitnet::cli::rewrite_llama_flags(std::vector<std::string>(argv + 1, argv + argc));
    if (const std::string error = bitnet::cli::check_command(app, args); !error.empty())
      return fail(error);
  } catch (const bitnet::Error& e) {
    return fail(e.what());
  }
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend()); // CLI11 pops from the back
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const std::string unknown = bitnet::cli::explain_unknown_option(app, args);
    return fail(unknown.empty() ? std::string(e.what()) + " (see --help)" : unknown);
  }

  try {
    // The library's logger on stderr; --log-level wins over -v.
    bitnet::log_to_stderr(!log_level.empty() ? log_level : verbose ? "debug" : "info");
    if (!isa.empty()) bitnet::select_isa(isa);
    // An interrupt removes the temporary files of unfinished outputs and exits 128 + signal;
    // run and chat install their own handlers (stop after the current token).
    bitnet::cli::install_cleanup_handlers();
    for (auto& [sub, run] : commands) {
      if (!sub->parsed()) continue;
      const int status = run();
      bitnet::cli::flush_stdout();
      return status;
    }
    return bitnet::exit_code(bitnet::ErrorKind::invalid_argument);
  } catch (const bitnet::cli::StdoutClosed&) {
    return bitnet::cli::kExitStdoutClosed; // the reader went away: quietly
  } catch (const bitnet::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "bitnet: error: %s\n", e.what());
    return bitnet::exit_code(e.kind());
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    std::fprintf(stderr, "bitnet: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "bitnet: error: %s\n", e.what());
    return 1;
  }
}
