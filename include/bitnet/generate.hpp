// The one generation loop: tokenize → prefill in chunks of n_batch → repeat { sample,
// append, check stops, forward only the new token }. run, chat, bench and tests call it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/sampling.hpp"
#include "bitnet/session.hpp"
#include "bitnet/stats.hpp"

namespace bitnet {

struct GenerateParams {
  int32_t n_predict = -1; // -1: until an end-of-generation token or the context is full
  SamplerParams sampler;
  bool ignore_eos = false;       // keep generating through EOG tokens (logits unchanged)
  std::vector<std::string> stop; // stop when the generated text contains one of these
  // Text prompts only: prepend BOS (only when the session is empty). Unset = the model's
  // tokenizer.ggml.add_bos_token.
  std::optional<bool> add_bos;
  bool parse_special = true; // special-token text in the prompt becomes the special id
  // screened needs a model loaded with a screen (else the exact head is used). Samplers that
  // need every logit (top_k <= 0) use the exact head either way.
  HeadMode head = HeadMode::screened;
};

// Called once per generated token with the text that became printable (UTF-8 safe; text
// that may start a stop string is held back). Return false to stop.
using TokenCallback = std::function<bool(int32_t id, std::string_view text)>;

// The prompt continues the session (n_past tokens already cached; chat keeps its history
// there). A prompt plus n_predict that cannot fit the context throws Error(context_overflow)
// before any work. Every generated token is forwarded into the cache, so the session can
// be continued by the next call.
Stats generate(Session& session, std::span<const int32_t> prompt_ids, const GenerateParams& params,
               const TokenCallback& on_text = {});
Stats generate(Session& session, std::string_view prompt, const GenerateParams& params,
               const TokenCallback& on_text = {});

} // namespace bitnet
