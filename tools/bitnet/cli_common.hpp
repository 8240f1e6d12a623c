// Helpers shared by run, chat, bench and perplexity: model resolution, thread and memory
// facts, the llama.cpp-shaped timing block and the JSON receipt.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/bitnet.hpp"
#include "util/json.hpp"

namespace bitnet::cli {

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
inline constexpr int kReceiptSchemaVersion = 1;
json::Value make_receipt(const Stats& stats, const RunReport& report);
// Writes `value` pretty-printed to `path`; Error(io) when it cannot.
void write_json_file(const std::string& path, const json::Value& value);

// Adds `turn` (one generate() call) into `total`, as if they had been one call.
void accumulate(Stats& total, const Stats& turn);

} // namespace bitnet::cli
