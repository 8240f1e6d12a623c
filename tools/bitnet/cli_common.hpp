// Helpers shared by run, chat, bench and perplexity: model resolution, thread and memory
// facts, the llama.cpp-shaped timing block and the JSON receipt.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bitnet/bitnet.hpp"

namespace bitnet::cli {

// JSON output (receipts, --json, bench rows): members stay in the order they are set.
using Json = nlohmann::ordered_json;
// A double as JSON. An integral value prints as an integer ("1", not "1.0"), as the receipts
// of schema_version 1 always have; non-finite values print as null.
Json number(double v);
Json numbers(const std::vector<double>& v);
// A measured value to 3 decimals (a microsecond of a millisecond figure), printed as the
// shortest decimal of that: 1.42189, not 1.4218899999999999.
Json rounded(double v);
// A float option as the user wrote it (0.95, not 0.949999988079071): its shortest decimal.
Json decimal(float f);
// Parses JSON input; Error(invalid_input) saying where it is malformed.
nlohmann::json parse_json(std::string_view text);
// JSON text, compact (indent < 0) or pretty. Model text may hold invalid UTF-8: such bytes
// become U+FFFD instead of making the output fail.
std::string dump(const Json& value, int indent = -1);

// llama.cpp's single-dash multi-letter flags become bitnet's long forms before parsing (-cnv,
// -sys, -st, -tb, -ub, -mli, -dkvc, -np); -fa and -ngl N are dropped with a one-line warning;
// Hugging Face download flags (-hf ...) are refused (Error(invalid_argument)).
std::vector<std::string> rewrite_llama_flags(std::vector<std::string> args);
// A positive number (CLI::PositiveNumber's message quotes DBL_MAX as the range's end).
CLI::Validator positive_number();
// "" when the first word of `args` is a command of `app` (or there is none); else the message
// "unknown command 'rnu' (did you mean 'run'?)".
std::string check_command(const CLI::App& app, const std::vector<std::string>& args);
// After a parse error: "unknown option '--tmep' (did you mean '--temp'?)" for the first option
// the chosen command does not have, or "" when every option is known.
std::string explain_unknown_option(const CLI::App& app, const std::vector<std::string>& args);
// Text safe to print on a terminal: control characters (C0, DEL, C1) as \n, \t, \r or \xHH,
// backslashes doubled; valid UTF-8 stays, invalid bytes as \xHH. For every printed key, name
// and token piece that comes from a file.
std::string escape_text(std::string_view text);
// llama.cpp's escape processing of -p: \n \r \t \' \" \\ and \xHH; others stay as written.
std::string process_escapes(std::string_view text);

// The trained demo model shipped in tests/data/real-tiny (absolute path fixed at build time),
// or "" when this is not the build tree's binary (an installed copy has no default model).
std::string demo_model_path();
inline constexpr const char* kDemoPrompt = "The jury said it did find that";

// `given` when not empty; otherwise the demo model, announced on stderr. Throws
// Error(invalid_argument) naming -m when there is no demo model.
std::string resolve_model_path(const std::string& given);

// Peak resident set size of this process in bytes (getrusage ru_maxrss).
uint64_t peak_rss_bytes();
// The whole file as bytes ("-": all of stdin); Error(io) naming the file when it cannot be read.
std::string read_file(const std::string& path);
// read_file less one trailing '\n', as llama.cpp's -f/--file reads a prompt (common/arg.cpp):
// a text file's last newline is not part of the prompt, so `-f` gives llama-cli's tokens.
std::string read_prompt_file(const std::string& path);
// "f16" | "f32"; Error(invalid_argument) otherwise.
KvType parse_kv_type(std::string_view name);
const char* to_string(KvType type) noexcept;
// Current UTC time as ISO 8601 ("2026-01-31T12:00:00Z").
std::string utc_timestamp();
// "screened" | "exact"; Error(invalid_argument) otherwise.
HeadMode parse_head_mode(std::string_view name);
// Mean bytes the decode steps of `stats` read: the weights but the head, K and V of the
// cached positions, and the head step that followed each (Stats::head_bytes: the screen and
// the rows recomputed, or the whole head); the bandwidth floor's numerator.
double decode_bytes_per_token(const Session& session, const Stats& stats);

// What the timing block and the receipt report besides the generate() counters.
struct RunReport {
  const ModelInfo* model = nullptr;
  const Session* session = nullptr;
  const GenerateParams* params = nullptr;
  double total_ms = 0.0; // wall time of the command: load + session + generation
};

// llama_perf_context_print's block (load, prompt eval, eval, sampling, total) plus ISA,
// threads, context and peak memory, on `out`.
void print_timings(std::FILE* out, const Stats& stats, const RunReport& report);

// The receipt (schema documented in README.md; kReceiptSchemaVersion bumps on changes).
inline constexpr int kReceiptSchemaVersion = 2;
Json make_receipt(const Stats& stats, const RunReport& report);
// Writes `value` pretty-printed to `path` through OutputFile; Error(io) when it cannot.
void write_json_file(const std::string& path, const Json& value);

// stdout. Every command writes through write_stdout (or checks with flush_stdout at the end,
// which main() does for all). A reader that went away (EPIPE) throws StdoutClosed: the
// command ends quietly with kExitStdoutClosed; any other failure (/dev/full) is Error(io).
struct StdoutClosed : std::exception {
  const char* what() const noexcept override { return "stdout closed"; }
};
inline constexpr int kExitStdoutClosed = 0;
void write_stdout(std::string_view text); // buffered; a failed write throws at once
void flush_stdout();
template <typename... Args> void print_stdout(fmt::format_string<Args...> format, Args&&... args) {
  write_stdout(fmt::format(format, std::forward<Args>(args)...));
}

// Interrupts. install_interrupt_handlers(): SIGINT, SIGTERM and SIGHUP set interrupt_flag()
// (generate()'s cancel) and are remembered; a second SIGINT removes temporary outputs and
// exits at once with 130. install_cleanup_handlers(): the first signal removes temporary
// outputs and exits with 128 + signal (synth, quantize, perplexity).
void install_interrupt_handlers();
void install_cleanup_handlers();
const std::atomic<bool>& interrupt_flag();
int interrupt_signal();   // the signal that set the flag, 0 when none
void clear_interrupt();   // chat: a stopped reply returns to the prompt
int interrupted_status(); // 128 + interrupt_signal()

// Adds `turn` (one generate() call) into `total`, as if they had been one call.
void accumulate(Stats& total, const Stats& turn);

} // namespace bitnet::cli
