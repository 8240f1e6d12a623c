// Causal grouped-query attention over the KV cache, softmax(q·Kᵀ/√d + mask)·V, with
// bitnet.cpp's floats (GgmlAttention) and the work split evenly over the threads without
// changing any sum's order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <vector>

#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"
#include "model/config.hpp"
#include "model/kv_cache.hpp"
#include "util/pages.hpp"

namespace bitnet::model {

// How bitnet.cpp's graph evaluates attention for a batch of n_tok queries after pos cached
// positions; the results equal its floats only under these rules (attention.cpp says why).
struct GgmlAttention {
  int64_t n_pad;    // the KV length softmax and ·V run over: n_kv padded to 32, masked
  bool round_q;     // K·q takes q rounded to f16 (always, with an F16 cache)
  bool round_probs; // ·V takes the probabilities rounded to f16; else unrounded, tinyBLAS order

  static GgmlAttention of(int64_t pos, int64_t n_tok, int64_t n_ctx, bool f16_cache);
  // The part of the padded length that can change a query's result (n_kv positions seen).
  int64_t extent(int64_t n_kv) const;
};

class Attention {
public:
  // Scratch for up to n_batch queries against up to n_ctx positions on n_threads threads.
  Attention(const Config& config, const kernels::Table& table, int64_t n_batch, int64_t n_ctx,
            int n_threads);

  // out[t][h·head_dim + d] for the n_tok queries q[t][h·head_dim + d] (roped) at positions
  // pos + t, over layer il of `cache`, whose positions [0, pos + n_tok) are written.
  void run(const float* q, int64_t n_tok, int64_t pos, KvCache& cache, int64_t il, float* out,
           kernels::ThreadPool& pool);

  // One query of each of several sequences (a batched decode step): query `row` at q +
  // row·stride, at position pos of *cache, out at out + row·stride, as run() computes it
  // alone. Queries too short to split go whole to the threads, first come first served.
  struct DecodeRow {
    int64_t row;
    int64_t pos;
    KvCache* cache;
  };
  void decode_rows(const float* q, int64_t stride, std::span<const DecodeRow> rows, int64_t il,
                   float* out, kernels::ThreadPool& pool);

  uint64_t scratch_bytes() const;

private:
  struct Layer; // one layer's cache view and the batch's rules

  Layer layer(int64_t pos, int64_t n_tok, KvCache& cache, int64_t il) const;
  bool splits(const Layer& l) const;
  void decode(const Layer& l, const float* q, float* out, kernels::ThreadPool* pool, int slot);
  void batch(const Layer& l, const float* q, int64_t n_tok, float* out, kernels::ThreadPool& pool);
  void scores(const Layer& l, int64_t j0, int64_t n_keys, int64_t g, const float* x, int64_t n_x,
              float* s) const;
  void values(const Layer& l, int64_t r0, int64_t n_rows, const float* p, const uint16_t* p16,
              int64_t n_x, int64_t n, float* out) const;
  void softmax_row(const Layer& l, float* s, int64_t n_kv) const;
  void queries(const Layer& l, const float* q, int64_t n, float* x) const;
  void key_tile(const Layer& l, int64_t g, int64_t t, int64_t n_kv, float* row);

  const Config& c_;
  const kernels::Table& k_;
  int64_t span_;  // length of a score row: n_ctx rounded up to whole cache lines
  int64_t group_; // query heads per KV head
  int64_t block_; // queries per work item of a batch
  // Score rows, then probabilities, of length span_: one per head for a single token (split by
  // keys, then rows, then value rows; with n_batch > 1, one such set per thread for
  // decode_rows), kBlock·group per thread for a batch.
  ScratchVector<float> rows_;
  // Queries as the dots take them: [n_head][head_dim] for a single token (per thread as
  // rows_), [n_threads][kBlock · group][head_dim] for a batch.
  ScratchVector<float> q_;
  // A batch's keys, [n_head_kv][span_ / kKeyTile] tiles of kKeyTile keys (key_tile_dots), when
  // head_dim is whole chunks of 64.
  ScratchVector<float> keys_;
  // A single token's probabilities in F16 as well, laid out as rows_, where the table's V·p
  // takes them so (Table::f16_f16_dots).
  ScratchVector<uint16_t> probs16_;
};

} // namespace bitnet::model
