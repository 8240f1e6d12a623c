// Each subcommand lives in its own cmd_*.cpp: add_* registers it on the root app and
// returns the function main() calls when it was chosen. Errors are thrown as
// bitnet::Error; main() prints one line and exits with exit_code(kind).
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace bitnet::cli {

using CommandFn = std::function<int()>;

CommandFn add_info(CLI::App& root);
CommandFn add_synth(CLI::App& root);
CommandFn add_quantize(CLI::App& root);
CommandFn add_tokenize(CLI::App& root);
CommandFn add_run(CLI::App& root);  // `run`
CommandFn add_chat(CLI::App& root); // `chat`
CommandFn add_bench(CLI::App& root);
CommandFn add_perplexity(CLI::App& root);
CommandFn add_serve(CLI::App& root);

} // namespace bitnet::cli
