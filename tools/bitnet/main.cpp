// bitnet: command-line entry point. Text goes to stdout, logs and errors to stderr.
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "bitnet/build_info.hpp"
#include "bitnet/error.hpp"
#include "bitnet/system.hpp"
#include "commands.hpp"

namespace {

void setup_logging(bool verbose, const std::string& level) {
  auto logger = spdlog::stderr_color_mt("bitnet");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::level::level_enum lvl = verbose ? spdlog::level::debug : spdlog::level::info;
  if (!level.empty()) {
    lvl = spdlog::level::from_str(level);
    if (lvl == spdlog::level::off && level != "off") {
      throw bitnet::Error(bitnet::ErrorKind::invalid_argument,
                          "--log-level: unknown level '" + level +
                              "' (trace, debug, info, warn, error, critical, off)");
    }
  }
  spdlog::set_level(lvl);
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"bitnet: BitNet b1.58 ternary LLM inference on CPUs (GGUF, bitnet.cpp compatible)",
               "bitnet"};
  app.require_subcommand(1);
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
      "Force a kernel variant: scalar|avx2|avxvnni|avx512|neon|neon_dotprod (also BITNET_ISA)");
  app.fallthrough();

  std::vector<std::pair<CLI::App*, bitnet::cli::CommandFn>> commands;
  auto add = [&](bitnet::cli::CommandFn (*fn)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    auto run = fn(app);
    commands.emplace_back(app.get_subcommands({}).at(before), std::move(run));
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

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "bitnet: error: %s (see --help)\n", e.what());
    return bitnet::exit_code(bitnet::ErrorKind::invalid_argument);
  }

  try {
    setup_logging(verbose, log_level);
    if (!isa.empty()) bitnet::select_isa(isa);
    for (auto& [sub, run] : commands) {
      if (sub->parsed()) return run();
    }
    return bitnet::exit_code(bitnet::ErrorKind::invalid_argument);
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
