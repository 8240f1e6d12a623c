// The one generation loop: tokenize → prefill in llama.cpp's micro-batches → repeat { sample,
// append, check stops, forward only the new token }. run, chat, bench and tests call it.
#pragma once

#include <atomic>
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
  // The text callback gets valid UTF-8: bytes that never complete a character become U+FFFD.
  // true: the tokens' bytes as they are.
  bool raw_bytes = false;
  // A full context stops generation (StopReason::ctx_full), unless context_shift: then the
  // oldest half of the tokens after the first n_keep is discarded (Session::shift, as
  // llama-cli's context shift) and generation goes on.
  bool context_shift = false;
  int32_t n_keep = 0; // tokens at the start of the cache a shift keeps (BOS, system prompt)
  // Checked between prefill micro-batches and after every decode step: once true, generation
  // stops with StopReason::interrupted (the token being decoded is finished first).
  const std::atomic<bool>* cancel = nullptr;
};

// Called once per generated token with the text that became printable (UTF-8 safe; text
// that may start a stop string is held back). Return false to stop.
using TokenCallback = std::function<bool(int32_t id, std::string_view text)>;

// The checks of the parameters alone: bad sampling values, a logit-bias token outside the
// model's vocabulary, stop strings or n_predict throw Error(invalid_argument). For callers
// that check before they have a prompt (chat before its first turn, serve before it queues).
void validate(const Model& model, const GenerateParams& params);

// The checks generate() makes before any work, for a prompt of n_prompt tokens: those above,
// and a bad n_keep throws Error(invalid_argument); a prompt that does not fit the context's
// free positions throws Error(context_overflow). Callers that print something first (the
// CLI echoes the prompt) call it before printing.
void validate(const Session& session, const GenerateParams& params, size_t n_prompt);

// The prompt continues the session (n_past tokens already cached; chat keeps its history
// there). validate() runs first. Generation ends at an end-of-generation token, n_predict
// tokens, a stop string, the callback's false, a full context (unless context_shift) or
// `cancel`. Every generated token is forwarded into the cache, so the session can be
// continued by the next call.
Stats generate(Session& session, std::span<const int32_t> prompt_ids, const GenerateParams& params,
               const TokenCallback& on_text = {});
Stats generate(Session& session, std::string_view prompt, const GenerateParams& params,
               const TokenCallback& on_text = {});

} // namespace bitnet
