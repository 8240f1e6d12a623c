// A session: one sequence's KV cache and forward scratch over a shared model, computed by a
// thread pool of its own or one shared with other sessions.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "bitnet/model.hpp"

namespace bitnet {

enum class KvType { f16, f32 }; // f16 as bitnet.cpp (default)

// The largest thread count a session accepts (also the CLI's -t limit).
inline constexpr int32_t kMaxThreads = 512;
// The thread count used when SessionParams::n_threads is 0: the physical cores this process
// may use (bounded by its CPU affinity mask and its cgroup cpu.max quota), at least 1.
int32_t default_threads();

// n_ctx 0 takes the model's context_length, but at most this many positions, so that a
// file's claim alone never sizes a huge KV cache (ask for more explicitly).
inline constexpr int32_t kMaxDefaultCtx = 32768;

// Worker threads for forward passes (the calling thread counts as one). Sessions that share
// a pool take turns, one forward (or prefill chunk) at a time, whichever threads call them.
class ThreadPool {
public:
  // 0 = default_threads(); more than the usable CPUs is allowed (warned).
  // Error(invalid_argument) outside [0, kMaxThreads].
  explicit ThreadPool(int32_t n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int32_t n_threads() const;

private:
  friend struct detail::Access;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The micro-batch sizes llama_decode evaluates n tokens in: logical batches of n_batch, each
// cut into micro-batches of n_ubatch (the last of each batch may be shorter).
std::vector<int32_t> micro_batches(int64_t n, int32_t n_batch, int32_t n_ubatch);

struct SessionParams {
  int32_t n_ctx = 0;      // 0 = the model's context_length, at most kMaxDefaultCtx
  int32_t n_batch = 2048; // logical batch (llama.cpp's -b); capped at n_ctx
  int32_t n_ubatch = 512; // tokens per batched forward (-ub); capped at n_batch
  int32_t n_threads = 0;  // 0 = default_threads(); with `pool`: 0 or the pool's size
  KvType kv_type = KvType::f16;
  std::shared_ptr<ThreadPool> pool = nullptr; // null: the session makes its own of n_threads
  // Back the KV cache's memory when the session is made (as llama.cpp clears its cache), so
  // that the first evaluation pays no page faults for it; false: pages are backed as first
  // written. A server sets it: its slots' first requests then start as fast as later ones.
  bool populate_kv = false;
};

// One logit of the last evaluated token (Session::top_logits).
struct TokenLogit {
  int32_t id = 0;
  float logit = 0.0f;
  bool operator==(const TokenLogit&) const = default;
};

class Session {
public:
  // Allocates the KV cache (n_layer × n_ctx × n_head_kv·head_dim for K and V).
  // Throws Error(invalid_argument) on bad parameters, or when the KV cache would not fit in
  // the memory this process may use (before allocating it).
  Session(std::shared_ptr<const Model> model, const SessionParams& params = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Model& model() const;
  int32_t n_ctx() const;
  int32_t n_batch() const;
  int32_t n_ubatch() const;
  int32_t n_threads() const;
  KvType kv_type() const;
  uint64_t kv_bytes() const;
  const std::shared_ptr<ThreadPool>& pool() const;
  // Bytes one decode step at position `pos` reads: the weights (ModelInfo's
  // weight_bytes_per_token) plus K and V of the pos + 1 cached positions in every layer; with
  // `head_bytes`, the weights but the head plus that (a screened step: Stats::head_bytes).
  double decode_step_bytes(int64_t pos) const;
  double decode_step_bytes(int64_t pos, uint64_t head_bytes) const;

  int32_t n_past() const;                  // tokens in the cache
  std::span<const int32_t> tokens() const; // those tokens
  void clear(); // forget the cache (keeps the allocation): behaves as a fresh session
  // Forgets all but the first n tokens (0 <= n <= n_past; else Error(invalid_argument)): their
  // cache entries stay valid, since a position's K and V depend only on the tokens up to it;
  // the forgotten positions read as a fresh cache's.
  void truncate(int32_t n);

  // Forgets the tokens [n_keep, n_keep + n_discard) and moves the later ones down to n_keep,
  // as llama-cli's context shift (llama_kv_cache_seq_rm + seq_add): their K rows are rotated
  // by -n_discard positions in the cache's own precision, not recomputed, and the V entries
  // freed at the end are zeroed. Error(invalid_argument) unless 0 <= n_keep, 0 < n_discard
  // and n_keep + n_discard <= n_past.
  void shift(int32_t n_keep, int32_t n_discard);

  // Forwards `tokens` at positions [n_past, n_past + n) in micro_batches() and appends
  // them to the cache. Returns the logits of every token (n × n_vocab, row-major) when
  // all_logits, else of the last token only (n_vocab). The span is valid until the next
  // call. Throws Error(context_overflow) when they do not fit (nothing is evaluated),
  // Error(invalid_input) for an out-of-range id or an empty list.
  std::span<const float> evaluate(std::span<const int32_t> tokens, bool all_logits = false);
  // evaluate() without the head: forwards `tokens` into the cache (the same checks and errors)
  // and keeps only the last token's hidden state, so that logits() or top_logits() computes
  // what it is asked for.
  void append(std::span<const int32_t> tokens);
  // Logits of the last evaluated token, all of them (empty before the first evaluate or after
  // clear() or truncate()). After append() or generate(), whose steps compute only the logits
  // they sample from, the whole head runs here on first use.
  std::span<const float> logits() const;
  // The m largest logits of the last evaluated token, as (id, logit) by descending logit, equal
  // logits by ascending id (a NaN logit, which only a non-finite hidden state gives, ranks
  // after every number): exactly the first m of logits() in that order, the same floats bit
  // for bit. m above n_vocab is clamped to n_vocab. Error(invalid_argument) when m < 1,
  // Error(invalid_input) when logits() would be empty.
  // Cost: with `head` screened, a model loaded with a screen (ModelOptions::head, F16 heads)
  // and m < n_vocab, when no logits of this token exist yet (after append() or generate(),
  // not evaluate()): one pass over the 8-bit screen (about half the head's bytes), then the
  // exact F16 rows of only the candidates, the rows whose rigorous bound can reach the top m
  // (README "Output head"); when the candidates exceed 1/16 of the vocabulary or the hidden
  // state is not finite, every row exactly. Otherwise the whole exact head once (as logits(),
  // whose result is reused when it exists), plus a partial sort. The screened rows are not
  // kept: logits() after it still computes the whole head.
  std::vector<TokenLogit> top_logits(int32_t m, HeadMode head = HeadMode::screened) const;

private:
  friend struct detail::Access;
  struct Impl; // cache, pool and forward scratch (src/runtime/session_impl.hpp)
  std::unique_ptr<Impl> impl_;
};

} // namespace bitnet
