// Helpers shared by run, chat, bench and perplexity: model resolution, thread and memory
// facts, the llama.cpp-shaped timing block and the JSON receipt.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitnet/bitnet.hpp"

namespace bitnet::cli {

// JSON output (receipts, --json, bench rows): members stay in the order they are set.
using Json = nlohmann::ordered_json;
// A double as JSON. An integral value prints as an integer ("1", not "1.0"), as the receipts
// of schema_version 1 always have; non-finite values print as null.
Json number(double v);
Json numbers(const std::vector<double>& v);
// A float option as the user wrote it (0.95, not 0.949999988079071): its shortest decimal.
Json decimal(float f);
// Parses JSON input; Error(invalid_input) saying where it is malformed.
nlohmann::json parse_json(std::string_view text);
// JSON text, compact (indent < 0) or pretty. Model text may hold invalid UTF-8: such bytes
// become U+FFFD instead of making the output fail.
std::string dump(const Json& value, int indent = -1);

// The trained demo model shipped in tests/data/real-tiny (absolute path fixed at build time).
std::string demo_model_path();
inline constexpr const char* kDemoPrompt = "The jury said it did find that";

// `given` when not empty; otherwise the demo model, announced on stderr. Throws Error(io)
// when the demo model is missing.
std::string resolve_model_path(const std::string& given);

// Peak resident set size of this process in bytes (getrusage ru_maxrss).
uint64_t peak_rss_bytes();
// The whole file as bytes; Error(io) naming the file when it cannot be read.
std::string read_file(const std::string& path);
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
// Writes `value` pretty-printed to `path`; Error(io) when it cannot.
void write_json_file(const std::string& path, const Json& value);

// Adds `turn` (one generate() call) into `total`, as if they had been one call.
void accumulate(Stats& total, const Stats& turn);

} // namespace bitnet::cli
