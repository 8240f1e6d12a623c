#include "model/attention.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <deque>
#include <utility>

namespace bitnet::model {

namespace {

// Queries whose attention one batch work item computes together: their K rows and V rows are
// read once for the block. 16 against 4 (bench_kernels attention n=512 n_kv=4096, 2 threads, 3
// alternations): AVX-512 105-106 against 113-114 ms, AVX2 225-228 against 219-229; pp2048 with
// avx512 1.015x from 4 to 8 and again from 8 to 16 (4 pairs each), 32 no further.
constexpr int64_t kBlock = 16;
// Below this many multiply-adds (≈ 30 µs on one core) a single token's attention runs on the
// calling thread: splitting it would cost more in synchronisation than it saves.
constexpr int64_t kSplitMacs = int64_t{1} << 20;
// Keys and value rows a thread takes at a time (a single token): 16 floats, one cache line, so
// no two threads write the same line of a score row or an output row.
constexpr int64_t kGranule = 16;
// A single token's V·p over at least this many positions takes its probabilities in F16 where
// the table can (Table::f16_f16_dots: AVX-512). bench_kernels attention n=1, 2 threads, against
// f32 probabilities: n_kv=512 1.13x the time (the conversion and the widening, where 8 KB of
// f32 probabilities sit in L1 anyway), 1024 0.993x, 2048 0.958x (lower in 5 of 5), 4096 0.94x.
constexpr int64_t kF16ProbsFrom = 2048;

size_t sz(int64_t n) {
  return static_cast<size_t>(n);
}

// One phase's work over [0, len) in whole granules, claimed first come first served in
// shrinking pieces: each claim takes 1/(2·threads) of the granules left, at least one. A
// thread that is descheduled for a while does less instead of holding up the others, and the
// last pieces are a granule or so, so the threads finish close together. Against 4 equal
// pieces per thread, the threads' idle time per layer at depth 2048, 2 threads (timing build):
// 14-20 µs → 4-8 µs, lower in 8 of 8 alternations (medians 17.4 and 5.6).
class Chunks {
public:
  Chunks(int64_t len, int64_t granule, int n_threads, bool spins)
      : len_(len), granule_(granule), units_((len + granule - 1) / granule),
        share_(2 * int64_t{n_threads}), done_(units_, spins) {}

  // fn(begin, end) for every piece this thread claims.
  template <class Fn> void each(Fn fn) {
    int64_t u = next_.load(std::memory_order_relaxed);
    while (u < units_) {
      const int64_t end = u + (units_ - u + share_ - 1) / share_;
      if (!next_.compare_exchange_weak(u, end, std::memory_order_relaxed)) continue;
      fn(u * granule_, std::min(len_, end * granule_));
      done_.arrive(end - u);
      u = next_.load(std::memory_order_relaxed);
    }
  }

  // Returns when every granule is done, by whichever thread claimed it (kernels::Completion).
  void wait_done() const { done_.wait(); }

private:
  int64_t len_, granule_, units_, share_;
  std::atomic<int64_t> next_{0};
  kernels::Completion done_;
};

// ggml's vec_dot_f32 for the F32 cache, one dot per (row, vector) as the F16 kernels lay them
// out: plain f32 sums (the F32 cache is not part of bitnet.cpp's parity).
void f32_dots(const float* a, int64_t lda, int64_t n_rows, const float* x, int64_t ldx, int64_t n_x,
              int64_t n, float* out, int64_t ld_out) {
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t i = 0; i < n_x; ++i) {
      float sum = 0.0f;
      for (int64_t k = 0; k < n; ++k)
        sum += a[r * lda + k] * x[i * ldx + k];
      out[i * ld_out + r] = sum;
    }
}

// x = (float)(f16)x, in place.
void round_to_f16(const kernels::Table& k, float* x, int64_t n) {
  uint16_t half[256];
  for (int64_t i = 0; i < n; i += 256) {
    const int64_t m = std::min<int64_t>(256, n - i);
    k.f32_to_f16(x + i, m, half);
    k.f16_to_f32(half, m, x + i);
  }
}

} // namespace

// The rules, and why bitnet.cpp's floats follow them (A.trace.json and the parity fixtures
// agree bit for bit):
// - llama.cpp attends over the used cells padded to 32 (GGML_KQ_MASK_PAD), capped at the
//   context, masking each query's later positions with -inf (probability 0). The softmax runs
//   over that padded length, and its 16-lane chunks and double sums depend on it.
// - ggml multiplies an F16 matrix by f32 data after rounding the data to f16 (vec_dot_type)
//   and sums in ggml_vec_dot_f16's order: K·q.
// - For ·V a batch's contiguous f32 probabilities go to llamafile's tinyBLAS when the length
//   is a multiple of 16; tinyBLAS widens V and keeps the f32 operand. A single query's product
//   is a vector one, through ggml_vec_dot_f16 with the probabilities rounded to f16.
GgmlAttention GgmlAttention::of(int64_t pos, int64_t n_tok, int64_t n_ctx, bool f16_cache) {
  GgmlAttention a{};
  a.n_pad = std::min(n_ctx, (pos + n_tok + 31) / 32 * 32);
  a.round_q = f16_cache;
  a.round_probs = f16_cache && !(n_tok > 1 && a.n_pad % 16 == 0);
  return a;
}

// How far softmax and ·V must go for a query that sees n_kv positions: the padded length, or
// short of it by whole chunks of 16 that are all masked. Such a chunk adds +0 to the softmax's
// double sum and its products add ±0 to accumulators that start at +0, which changes no value;
// the chunks before it are summed exactly as over the padded length. With rounded
// probabilities ·V is ggml_vec_dot_f16, whose chunks of 64 and double tail depend on the
// length itself, so it takes the whole padded length.
int64_t GgmlAttention::extent(int64_t n_kv) const {
  if (round_probs) return n_pad;
  return std::min(n_pad, (n_kv + 15) / 16 * 16);
}

struct Attention::Layer {
  GgmlAttention rules;
  KvCache& cache;
  int64_t il;
  int64_t pos;
  int64_t span; // length of a score row in rows_
  float scale;  // 1/√head_dim
};

Attention::Attention(const Config& config, const kernels::Table& table, int64_t n_batch,
                     int64_t n_ctx, int n_threads)
    : c_(config), k_(table), span_((n_ctx + kGranule - 1) / kGranule * kGranule),
      group_(config.n_head / config.n_head_kv), block_(std::clamp<int64_t>(n_batch, 1, kBlock)) {
  // Sets of single-token scratch: one per thread for decode_rows when n_batch > 1. (With
  // n_batch 1, block_ is 1 and a set's n_head rows are all the rows.)
  const int64_t slots = n_batch > 1 ? n_threads : 1;
  const int64_t n_rows = slots * std::max(c_.n_head, block_ * group_);
  rows_.resize(sz(n_rows * span_));
  q_.resize(sz(n_rows * c_.head_dim));
  if (n_batch > 1 && c_.head_dim % 64 == 0 && k_.key_tile_dots)
    keys_.resize(sz(c_.n_head_kv * span_ * c_.head_dim));
  if (k_.f16_f16_dots) probs16_.resize(sz(slots * c_.n_head * span_));
}

uint64_t Attention::scratch_bytes() const {
  return (rows_.size() + q_.size() + keys_.size()) * sizeof(float) +
         probs16_.size() * sizeof(uint16_t);
}

// s[i·span + j] = K_{j0+j} · x_i for the n_x queries x of KV head g (head_dim floats each).
void Attention::scores(const Layer& l, int64_t j0, int64_t n_keys, int64_t g, const float* x,
                       int64_t n_x, float* s) const {
  const int64_t hd = c_.head_dim, ekv = c_.n_embd_kv();
  const int64_t at = j0 * ekv + g * hd;
  KvCache& cache = l.cache;
  if (cache.is_f16())
    k_.f16_dots(cache.k16(l.il) + at, ekv, n_keys, x, hd, n_x, hd, s, l.span);
  else
    f32_dots(cache.k32(l.il) + at, ekv, n_keys, x, hd, n_x, hd, s, l.span);
}

// out[i·head_dim + r] = V_{r0+r} · p_i over the first n positions, for value rows (KV head,
// dim) r0.. of one KV head and the probabilities p of n_x of its query heads (rows of span);
// p16, when not null, holds the same rounded probabilities in F16, for f16_f16_dots.
void Attention::values(const Layer& l, int64_t r0, int64_t n_rows, const float* p,
                       const uint16_t* p16, int64_t n_x, int64_t n, float* out) const {
  const int64_t ctx = l.cache.v_stride(), hd = c_.head_dim;
  KvCache& cache = l.cache;
  if (!cache.is_f16())
    f32_dots(cache.v32(l.il) + r0 * ctx, ctx, n_rows, p, l.span, n_x, n, out, hd);
  else if (p16)
    k_.f16_f16_dots(cache.v16(l.il) + r0 * ctx, ctx, n_rows, p16, l.span, n_x, n, out, hd);
  else if (l.rules.round_probs)
    k_.f16_dots(cache.v16(l.il) + r0 * ctx, ctx, n_rows, p, l.span, n_x, n, out, hd);
  else
    k_.f16_f32_dots(cache.v16(l.il) + r0 * ctx, ctx, n_rows, p, l.span, n_x, n, out, hd);
}

// The causal mask past n_kv, softmax(scale · s) over the padded length (its extent), rounding
// for ·V.
void Attention::softmax_row(const Layer& l, float* s, int64_t n_kv) const {
  const int64_t n = l.rules.extent(n_kv);
  std::fill(s + n_kv, s + n, -INFINITY);
  k_.softmax(s, n, l.scale, l.rules.round_probs);
}

// Keys [t·kKeyTile, (t + 1)·kKeyTile) of KV head g as key_tile_dots takes them, zeros past n_kv;
// row: head_dim floats of scratch.
void Attention::key_tile(const Layer& l, int64_t g, int64_t t, int64_t n_kv, float* row) {
  const int64_t hd = c_.head_dim, ekv = c_.n_embd_kv();
  float* tile = keys_.data() + (g * span_ + t * kernels::kKeyTile) * hd;
  for (int64_t m = 0; m < kernels::kKeyTile; ++m) {
    const int64_t j = t * kernels::kKeyTile + m;
    if (j < n_kv)
      k_.f16_to_f32(l.cache.k16(l.il) + j * ekv + g * hd, hd, row);
    else
      std::fill(row, row + hd, 0.0f);
    for (int64_t d = 0; d < hd; ++d)
      tile[d * kernels::kKeyTile + m] = row[d];
  }
}

// x = q as K·q takes it (n floats).
void Attention::queries(const Layer& l, const float* q, int64_t n, float* x) const {
  std::copy(q, q + n, x);
  if (l.rules.round_q) round_to_f16(k_, x, n);
}

Attention::Layer Attention::layer(int64_t pos, int64_t n_tok, KvCache& cache, int64_t il) const {
  return {GgmlAttention::of(pos, n_tok, cache.n_ctx(), cache.is_f16()),
          cache,
          il,
          pos,
          span_,
          1.0f / std::sqrt(static_cast<float>(c_.head_dim))};
}

// Whether a single query's attention is worth splitting over the threads.
bool Attention::splits(const Layer& l) const {
  return 2 * c_.n_head * c_.head_dim * l.rules.n_pad >= kSplitMacs;
}

void Attention::run(const float* q, int64_t n_tok, int64_t pos, KvCache& cache, int64_t il,
                    float* out, kernels::ThreadPool& pool) {
  const Layer l = layer(pos, n_tok, cache, il);
  if (n_tok == 1)
    decode(l, q, out, splits(l) ? &pool : nullptr, 0);
  else
    batch(l, q, n_tok, out, pool);
}

void Attention::decode_rows(const float* q, int64_t stride, std::span<const DecodeRow> rows,
                            int64_t il, float* out, kernels::ThreadPool& pool) {
  std::vector<std::pair<int64_t, Layer>> whole; // (row, its layer view)
  for (const DecodeRow& r : rows) {
    const Layer l = layer(r.pos, 1, *r.cache, il);
    if (splits(l))
      decode(l, q + r.row * stride, out + r.row * stride, &pool, 0);
    else
      whole.emplace_back(r.row, l);
  }
  const auto one = [&](size_t i, int slot) {
    const auto& [row, l] = whole[i];
    decode(l, q + row * stride, out + row * stride, nullptr, slot);
  };
  if (whole.size() == 1) one(0, 0);
  if (whole.size() <= 1) return;
  std::atomic<size_t> next{0};
  pool.run([&](int ti, int) {
    for (size_t i = next.fetch_add(1); i < whole.size(); i = next.fetch_add(1))
      one(i, ti);
  });
}

// One query, split over all threads, each sum whole in one thread: K·q by key ranges (every
// head); then ·V by value rows (KV head, dim), each value row read once for the group of query
// heads sharing it, and the softmax by KV heads. ·V starts when K·q is done (Chunks::wait_done),
// not when every thread has arrived, and a piece of ·V waits only for its own KV head's softmax.
// A thread about to take a head's values first claims the softmax of the head after it, so one
// thread's softmax runs while the other reads values: one phase and one wait fewer per layer.
// bench_kernels attention n=1 n_kv=4096, 2 threads, 6 alternations against a separate softmax
// phase: AVX-512 451-473 against 457-476 µs (lower in 5, equal in 1), AVX2 lower in 4; n_kv=512
// no change. Without a pool the query runs whole on the calling thread, in scratch set `slot`
// (decode_rows' thread index).
void Attention::decode(const Layer& l, const float* q, float* out, kernels::ThreadPool* pool,
                       int slot) {
  const int64_t hd = c_.head_dim, n_kv = l.pos + 1, span = l.span;
  float* x = q_.data() + slot * c_.n_head * hd;
  float* s = rows_.data() + slot * c_.n_head * span; // [n_head][span]
  // The probabilities in F16 too, where the rounded ones go to f16_f16_dots.
  // (round_probs implies an F16 cache.)
  uint16_t* s16 = l.rules.round_probs && !probs16_.empty() && l.rules.extent(n_kv) >= kF16ProbsFrom
                      ? probs16_.data() + slot * c_.n_head * span
                      : nullptr;
  queries(l, q, c_.n_head * hd, x);
  const int nt = pool ? pool->size() : 1;
  const bool spins = pool && pool->spins();
  Chunks keys(n_kv, kGranule, nt, spins), value_rows(c_.n_embd_kv(), kGranule, nt, spins);
  // The softmax by KV heads (its group of query rows), each claimed once, in order; done[g]
  // when KV head g's rows are ready for ·V.
  std::atomic<int64_t> next_head{0};
  std::deque<kernels::Completion> done;
  for (int64_t g = 0; g < c_.n_head_kv; ++g)
    done.emplace_back(1, spins);
  const auto softmax_upto = [&](int64_t last) {
    for (int64_t g = next_head.load(std::memory_order_relaxed); g <= last;)
      if (next_head.compare_exchange_weak(g, g + 1, std::memory_order_relaxed)) {
        for (int64_t h = g * group_; h < (g + 1) * group_; ++h) {
          softmax_row(l, s + h * span, n_kv);
          if (s16) k_.f32_to_f16(s + h * span, l.rules.extent(n_kv), s16 + h * span);
        }
        done[sz(g)].arrive();
        g = next_head.load(std::memory_order_relaxed);
      }
  };
  const auto job = [&](int, int) {
    keys.each([&](int64_t j0, int64_t j1) {
      // A key's cache row holds every KV head: the keys are taken in address order, every
      // head of a few keys at a time (16 keys per head at a time: 30% slower from memory, the
      // other heads' parts of the rows came in unprefetched).
      if (l.cache.is_f16()) {
        k_.head_dots(l.cache.k16(l.il) + j0 * c_.n_embd_kv(), c_.n_embd_kv(), j1 - j0,
                     c_.n_head_kv, group_, x, hd, s + j0, span);
        return;
      }
      for (int64_t g = 0; g < c_.n_head_kv; ++g)
        scores(l, j0, j1 - j0, g, x + g * group_ * hd, group_, s + g * group_ * span + j0);
    });
    keys.wait_done();
    value_rows.each([&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1;) { // pieces within one KV head
        const int64_t g = r / hd, end = std::min(r1, (g + 1) * hd);
        // The softmax of the next KV head too, so that one thread's softmax runs while the
        // other reads values.
        softmax_upto(std::min(g + 1, c_.n_head_kv - 1));
        done[sz(g)].wait();
        values(l, r, end - r, s + g * group_ * span, s16 ? s16 + g * group_ * span : nullptr,
               group_, l.rules.extent(n_kv), out + g * group_ * hd + r % hd);
        r = end;
      }
    });
  };
  if (pool)
    pool->run(job);
  else
    job(0, 1);
}

// A batch: with an F16 cache, first the keys laid out in tiles (split over the threads), then
// work items of (KV head, block of up to kBlock queries), taken first come first served, each
// done whole by one thread: K·q of the block's query heads over the keys the last query sees,
// each row's mask and softmax, then ·V of all of them at once.
void Attention::batch(const Layer& l, const float* q, int64_t n_tok, float* out,
                      kernels::ThreadPool& pool) {
  const int64_t hd = c_.head_dim, e = c_.n_embd, span = l.span;
  const int64_t block_rows = block_ * group_;
  const int64_t n_blocks = (n_tok + block_ - 1) / block_;
  const int64_t n_items = c_.n_head_kv * n_blocks;
  // K·q from tiles: each key is widened once per batch instead of once per block of 4 query
  // rows, and ggml's join and halving sums are shared by a tile's keys.
  const bool tiles = !keys_.empty() && l.cache.is_f16();
  const int64_t n_kv = l.pos + n_tok, n_tiles = (n_kv + kernels::kKeyTile - 1) / kernels::kKeyTile;
  Chunks packs(tiles ? c_.n_head_kv * n_tiles : 0, 1, pool.size(), pool.spins());
  std::atomic<int64_t> next{0};
  pool.run([&](int ti, int) {
    float* x = q_.data() + ti * block_rows * hd; // [kBlock·group][head_dim]
    float* s = rows_.data() + ti * block_rows * span;
    if (tiles) {
      packs.each([&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; ++u)
          key_tile(l, u / n_tiles, u % n_tiles, n_kv, x);
      });
      packs.wait_done();
    }
    for (int64_t item = next.fetch_add(1); item < n_items; item = next.fetch_add(1)) {
      // A head's blocks latest first: the dearest items are not the last ones left.
      const int64_t g = item / n_blocks, t0 = (n_blocks - 1 - item % n_blocks) * block_;
      const int64_t n_q = std::min(block_, n_tok - t0), head0 = g * group_ * hd;
      for (int64_t t = 0; t < n_q; ++t)
        queries(l, q + (t0 + t) * e + head0, group_ * hd, x + t * group_ * hd);
      if (tiles)
        k_.key_tile_dots(keys_.data() + g * span_ * hd, l.pos + t0 + n_q, x, hd, n_q * group_, hd,
                         s, span);
      else
        scores(l, 0, l.pos + t0 + n_q, g, x, n_q * group_, s);
      // ·V of the whole block over its last query's extent, into x (free after K·q): an
      // earlier query's probabilities are zero from its own extent on, where ggml, which takes
      // every query over the padded length, adds their ±0 products too.
      const int64_t n_v = l.rules.extent(l.pos + t0 + n_q);
      for (int64_t t = 0; t < n_q; ++t)
        for (int64_t h = 0; h < group_; ++h) {
          float* p = s + (t * group_ + h) * span;
          const int64_t n_kv_t = l.pos + t0 + t + 1;
          softmax_row(l, p, n_kv_t);
          std::fill(p + l.rules.extent(n_kv_t), p + n_v, 0.0f);
        }
      values(l, g * hd, hd, s, nullptr, n_q * group_, n_v, x);
      for (int64_t t = 0; t < n_q; ++t)
        std::copy(x + t * group_ * hd, x + (t + 1) * group_ * hd, out + (t0 + t) * e + head0);
    }
  });
}

} // namespace bitnet::model
