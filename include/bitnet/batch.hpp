// Several sequences generated together (a server's slots). Each sequence is a Generation on a
// Session of its own: generate()'s loop, one step at a time, with its own sampler, stop
// strings and text stream. Their decode forwards can run as one batched forward that reads
// the weights once per step, while every sequence gets exactly the numerics of decoding its
// token alone: a greedy Generation gives generate()'s tokens whatever else is batched with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/generate.hpp"
#include "bitnet/session.hpp"
#include "bitnet/stats.hpp"

namespace bitnet {

// Appends tokens[i] to sessions[i] for every i, in one forward: afterwards each session is as
// if it had evaluated its token alone (logits(), the next generation step). The sessions must
// be distinct, of one Model and one ThreadPool (SessionParams::pool), at most n_ubatch() of
// them (each session's). Throws, with no session changed: Error(invalid_argument) for a
// mismatch of those or of the two sizes, Error(context_overflow) when a session is full,
// Error(invalid_input) for an id outside the vocabulary.
void decode_batch(std::span<Session* const> sessions, std::span<const int32_t> tokens);

// One sequence's generation, as generate() runs it (generate() is a loop over this):
//   prefill() until prefill_left() == 0, then while (!done()) { next(); forward(); }
// where forward() may instead be one decode_batch() over several Generations.
class Generation {
public:
  // The prompt continues the session (see generate()). validate() runs before any
  // work (a prompt over the free context is Error(context_overflow)). The
  // session must outlive the Generation and be used by nothing else meanwhile.
  Generation(Session& session, std::span<const int32_t> prompt_ids, const GenerateParams& params);
  // Tokenizes `prompt` as generate() does (BOS per params.add_bos when the session is empty).
  Generation(Session& session, std::string_view prompt, const GenerateParams& params);
  ~Generation();
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  Session& session();
  // Prompt tokens not yet forwarded.
  int32_t prefill_left() const;
  // Forwards up to max_chunks more micro-batches of the prompt (as llama_decode splits it:
  // micro_batches(), so the tokens do not depend on how the prefill is spread; a cancel stops
  // between two of them and ends the generation), so a server can
  // interleave a long prompt with other sequences' decode steps.
  void prefill(int32_t max_chunks = std::numeric_limits<int32_t>::max());

  struct Token {
    int32_t id;
    std::string text; // newly printable text (UTF-8 safe, stop-string prefixes held back)
  };
  // The head step (the screened top m the sampler needs) and the sampler: the next token.
  // It is pending until forwarded; stop_reason() is set when it ends the generation. Needs
  // the prompt forwarded, no pending token and !done() (else Error(invalid_argument)).
  Token next();
  // The token next() returned, to be forwarded (nullopt when none is pending).
  std::optional<int32_t> pending() const;
  // Ends the generation after the pending token (StopReason::callback unless it already
  // ends): a callback's stop, a client gone.
  void cancel();
  // Forwards the pending token alone; decode_batch(generations) forwards several at once.
  // Every generated token enters the cache, so the session can be continued.
  void forward();

  // Stopped, with the last token forwarded.
  bool done() const;
  std::optional<StopReason> stop_reason() const;
  // This generation's counters so far (final once done()). A batched step's time counts as
  // each of its sequences' decode time.
  const Stats& stats() const;

private:
  friend void decode_batch(std::span<Generation* const> generations);
  friend size_t prepare_next(std::span<Generation* const> generations);
  friend void prefill_batch(std::span<Generation* const> generations);
  friend void step_batch(std::span<Generation* const> generations);
  struct Impl;
  // Forwards the next unit of each generation (its pending token, else its prompt's next
  // micro-batch) in one forward per group of rows that fits every member's n_batch.
  static void forward_units(std::span<Impl* const> todo);
  std::unique_ptr<Impl> impl_;
};

// Forwards the pending token of each generation in one forward over their sessions, as
// decode_batch() over sessions does (same requirements and errors, but more sequences than a
// session's n_batch go in several forwards), then prepare_next() over them. A generation
// without a pending token is an Error(invalid_argument), before anything runs.
void decode_batch(std::span<Generation* const> generations);

// Forwards the next micro-batch of the prompt of every generation with prompt left (as
// prefill(1) does for each: the same split, cancel and counters) in one forward over all
// their rows, in groups that fit a session's n_ubatch: the weights are read once for all, and
// each sequence's rows attend over its own cache as its micro-batch alone would, so its cache
// and tokens are prefill(1)'s. The others are left alone. Same requirements and errors as
// decode_batch(); a rejected forward changes none of its sequences.
void prefill_batch(std::span<Generation* const> generations);

// A server's step: forwards the next unit of every generation that has one (its pending
// token as decode_batch() forwards it, else its prompt's next micro-batch as prefill_batch()
// does) in one forward over all their rows, in groups that fit a session's n_batch, then runs
// prepare_next() over them all. So a step that admits new prompts reads the weights once, not
// once for the prompts and once for the running sequences; each sequence's tokens stay
// generate()'s. Generations that are done are left alone. Same requirements and errors as
// decode_batch().
void step_batch(std::span<Generation* const> generations);

// The head steps next() will run, of every generation ready for one (prompt forwarded, no
// pending token, not done, a screened head, none computed yet), in one pass: the screen is
// read once for all of them, as decode_batch() does for the steps after (so a server's new
// requests get their first tokens together). next() then only samples; each sequence's
// tokens stay generate()'s. Others are left alone. Returns how many were computed. The
// generations must share one model and one thread pool (else Error(invalid_argument),
// before anything runs).
size_t prepare_next(std::span<Generation* const> generations);

} // namespace bitnet
