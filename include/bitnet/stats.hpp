// Counters and timings of one generate() call.
#pragma once

#include <cstdint>
#include <vector>

#include "bitnet/model.hpp" // HeadMode

namespace bitnet {

enum class StopReason { eog, n_predict, stop_string, ctx_full, callback, interrupted };
const char* to_string(StopReason reason) noexcept; // "eog", "n_predict", ...

struct Stats {
  int32_t n_prompt = 0;     // prompt tokens evaluated by this call
  int32_t n_gen = 0;        // tokens generated
  int32_t n_past_start = 0; // tokens already in the cache when the call began
  int32_t n_threads = 0;
  int32_t n_ctx = 0;
  int32_t n_shifts = 0; // context shifts made (GenerateParams::context_shift)

  // Milliseconds. decode_ms covers the forwards of generated tokens; sample_ms the sampler.
  double load_ms = 0.0; // the model's load time (copied from ModelInfo)
  double tokenize_ms = 0.0;
  double prefill_ms = 0.0;
  double decode_ms = 0.0;
  double sample_ms = 0.0;
  double total_ms = 0.0; // this call, from tokenize to return

  std::vector<double> decode_ms_per_token; // one forward per generated token
  std::vector<int32_t> embedded_per_step;  // tokens embedded at each decode step (always 1)
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> generated_ids;
  // The head that produced the logits sampled from: screened when a screen was used.
  HeadMode head = HeadMode::exact;
  // For each generated token, the logits it was sampled from: head rows computed exactly
  // (n_vocab for the full head) and the head's bytes read (screen + those rows, or the head).
  std::vector<int32_t> head_rows;
  std::vector<uint64_t> head_bytes;
  StopReason stop_reason = StopReason::n_predict;
};

} // namespace bitnet
