// Kernel benchmarks on the BitNet b1.58 2B-4T shapes, for every kernel variant this CPU can
// run, at 1 and 2 threads (kernels::ThreadPool, rows split as the forward pass splits them):
//   i2s_gemv / i2s_gemm (the register-blocked gemm tiles at 128 and 512 tokens) on the four
//   ternary matrix shapes;
//   f16_gemv / f16_f32_gemm (64 tokens, as model::Head takes a batch) on the 128256×2560 F16
//   output head;
//   the screened head's per-token pass (src/model/head_screen) on its Q8_0 copy in either
//   layout: q8_0_gemv (rows) and q8_0_screen (groups);
//   a batched decode step of 4 tokens: i2s_gemm n=4 and both screens at n=4 (SIMD only);
//   attention (model::Attention, one layer, F16 cache, 20 query and 5 KV heads of 128) of one
//   token (decode) and of a 512-token batch (prefill) over 512 and 4096 positions;
//   softmax of a decode step's 20 score rows at depth 2048 (in cache, one thread), with the
//   probabilities rounded to f16 as a single query's ·V takes them, and without.
// Weights and KV caches rotate over >= 1 GiB of distinct matrices (L3 is 32 MiB), so every
// gemv and decode step streams its operand from memory as decoding does. Probes give the
// physical limits the kernels are compared against, measured in the same run: streaming-read
// bandwidth over 1 GiB (the best variant's loads), and for each variant the int8
// multiply-accumulate peak of its own int8 instruction (src/probes), which its I2_S gemm is
// compared against.
//
// Counters: bytes/s counts the weight bytes (activations stay in cache), MAC/s counts
// rows·k·tokens multiply-accumulates. Unless given on the command line, each benchmark runs
// --benchmark_repetitions=3 and only aggregates are reported; the closing table uses the
// medians. JSON: --benchmark_out=FILE --benchmark_out_format=json.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"
#include "model/attention.hpp"
#include "model/kv_cache.hpp"
#include "probes/probes.hpp"
#include "util/pages.hpp"

namespace bitnet::bench {
namespace {

using kernels::Isa;
using kernels::Table;
using kernels::ThreadPool;
using probes::Probe;

constexpr int64_t kRowGranule = 32; // output rows per work item, as in the forward pass
constexpr size_t kPoolBytes = size_t{1} << 30;
constexpr size_t kAlign = 64;
constexpr int kThreadCounts[] = {1, 2};

struct Shape {
  int64_t rows;
  int64_t k;
};
constexpr Shape kI2sShapes[] = {{2560, 2560}, {640, 2560}, {6912, 2560}, {2560, 6912}};
constexpr Shape kHead = {128256, 2560};
constexpr int64_t kGemmTokens[] = {128, 512};
// A batched decode step (bitnet serve --parallel 4): the weights read once for its tokens.
constexpr int64_t kDecodeBatch = 4;
// The head gemm is ~21 GMAC of f32 FMAs per 64 tokens (seconds per call): one batch size.
constexpr int64_t kHeadGemmTokens = 64;
constexpr int kHeadCopies = 2; // 2 × 656 MB of distinct head weights

struct AlignedFree {
  void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t{kAlign}); }
};
using Buffer = std::unique_ptr<uint8_t[], AlignedFree>;

Buffer allocate(size_t bytes) {
  return Buffer(static_cast<uint8_t*>(::operator new[](bytes, std::align_val_t{kAlign})));
}

size_t align_up(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

struct XorShift {
  uint64_t s = 0x9E3779B97F4A7C15ull;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

// 1 GiB of I2_S bytes holding only the codes files contain (0, 1, 2). Filled on first use,
// so a filtered run pays only for what it needs.
const uint8_t* i2s_pool() {
  static const Buffer pool = [] {
    uint8_t valid[81];
    int n = 0;
    for (int b = 0; b < 256; ++b)
      if (((b >> 6) & 3) < 3 && ((b >> 4) & 3) < 3 && ((b >> 2) & 3) < 3 && (b & 3) < 3)
        valid[n++] = static_cast<uint8_t>(b);
    Buffer p = allocate(kPoolBytes);
    XorShift rng;
    for (size_t i = 0; i < kPoolBytes; i += 8) {
      uint64_t r = rng.next();
      for (int j = 0; j < 8; ++j, r >>= 8)
        p[i + j] = valid[(r & 0xFF) % 81];
    }
    return p;
  }();
  return pool.get();
}

size_t head_bytes() {
  return align_up(static_cast<size_t>(kHead.rows * kHead.k) * sizeof(uint16_t));
}

// kHeadCopies distinct F16 heads with values of magnitude 2^-3 .. 2^0 (no subnormal
// products to slow the FMAs).
const uint16_t* head_pool() {
  static const Buffer pool = [] {
    const size_t bytes = head_bytes() * kHeadCopies;
    Buffer p = allocate(bytes);
    XorShift rng;
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
      uint64_t r = rng.next();
      uint16_t h[4];
      for (int j = 0; j < 4; ++j, r >>= 16) {
        const auto bits = static_cast<uint16_t>(r);
        h[j] = static_cast<uint16_t>((bits & 0x83FFu) | ((12u + (bits >> 10) % 3u) << 10));
      }
      std::memcpy(&p[i], h, sizeof h);
    }
    return p;
  }();
  return reinterpret_cast<const uint16_t*>(pool.get());
}

size_t q8_head_bytes() {
  return align_up(static_cast<size_t>(kHead.rows * kHead.k / 32 * 34));
}

// kHeadCopies distinct Q8_0 heads: random quants in [-127, 127], scales 2^-8 .. 2^-6. On huge
// pages, as model/head_screen.cpp keeps the screen (so are the groups below).
const uint8_t* q8_head_pool() {
  static const ZeroedPages pool = [] {
    const size_t bytes = q8_head_bytes() * kHeadCopies;
    ZeroedPages pages(bytes);
    auto* const p = static_cast<uint8_t*>(pages.data());
    XorShift rng;
    for (size_t i = 0; i < bytes; ++i)
      p[i] = static_cast<uint8_t>(static_cast<int>(rng.next() % 255) - 127);
    const uint16_t scales[3] = {0x1C00, 0x2000, 0x2400};
    for (size_t c = 0; c < kHeadCopies; ++c)
      for (int64_t b = 0; b < kHead.rows * kHead.k / 32; ++b)
        std::memcpy(&p[c * q8_head_bytes() + static_cast<size_t>(b) * 34], &scales[b % 3], 2);
    return pages;
  }();
  return static_cast<const uint8_t*>(pool.data());
}

constexpr int64_t kScreenGroups = kHead.rows / kernels::kScreenRows;

size_t screen_bytes() {
  return align_up(static_cast<size_t>(kScreenGroups * kernels::screen_group_bytes(kHead.k)));
}

// kHeadCopies distinct screens of the head in q8_0_screen's layout (groups): random quants in
// [-127, 127] (stored + 128), scales 2^-8 .. 2^-6.
const uint8_t* screen_pool() {
  static const ZeroedPages pool = [] {
    const size_t bytes = screen_bytes() * kHeadCopies;
    ZeroedPages pages(bytes);
    auto* const p = static_cast<uint8_t*>(pages.data());
    XorShift rng;
    for (size_t i = 0; i < bytes; ++i)
      p[i] = static_cast<uint8_t>(rng.next() % 255 + 1);
    const uint16_t scales[3] = {0x1C00, 0x2000, 0x2400};
    const int64_t nb = kHead.k / 32;
    for (size_t c = 0; c < kHeadCopies; ++c)
      for (int64_t g = 0; g < kScreenGroups; ++g) {
        uint8_t* group =
            &p[c * screen_bytes() + static_cast<size_t>(g * kernels::screen_group_bytes(kHead.k))];
        for (int64_t i = 0; i < nb * kernels::kScreenRows; ++i)
          std::memcpy(group + i / kernels::kScreenRows * kernels::kScreenBlockBytes +
                          kernels::kScreenQuantBytes + 2 * (i % kernels::kScreenRows),
                      &scales[i % 3], 2);
      }
    return pages;
  }();
  return static_cast<const uint8_t*>(pool.data());
}

ThreadPool& thread_pool(int n_threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& pool = pools[n_threads];
  if (!pool) pool = std::make_unique<ThreadPool>(n_threads);
  return *pool;
}

void set_rates(benchmark::State& state, double bytes_per_iter, double macs_per_iter) {
  state.counters["bytes/s"] =
      benchmark::Counter(bytes_per_iter, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["MAC/s"] =
      benchmark::Counter(macs_per_iter, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_i2s(benchmark::State& state, const Table* t, Shape s, int64_t n_tok, int n_threads) {
  const size_t mat_bytes = align_up(static_cast<size_t>(s.rows * s.k / 4));
  const size_t n_mats = kPoolBytes / mat_bytes;
  const uint8_t* pool = i2s_pool();
  XorShift rng;
  // On cache lines, as the forward pass keeps its activations.
  ScratchVector<int8_t> q(static_cast<size_t>(n_tok * s.k));
  for (auto& v : q)
    v = static_cast<int8_t>(static_cast<int>(rng.next() % 255) - 127);
  std::vector<float> act_scale(static_cast<size_t>(n_tok), 0.5f);
  std::vector<int32_t> act_sum(static_cast<size_t>(n_tok), 0);
  std::vector<float> out(static_cast<size_t>(n_tok * s.rows));
  // The tokens staged once, as the forward pass stages each input (Table::i2s_stage).
  ScratchVector<int8_t> staged;
  if (t->i2s_stage && n_tok > 1) {
    staged.resize(static_cast<size_t>(bitnet::kernels::i2s_staged_bytes(n_tok, s.k)));
    t->i2s_stage(q.data(), 0, n_tok, n_tok, s.k, staged.data());
  }
  ThreadPool& tp = thread_pool(n_threads);
  size_t i = 0;
  for (auto _ : state) {
    const uint8_t* w = pool + (i++ % n_mats) * mat_bytes;
    tp.parallel_for(s.rows, kRowGranule, [&](int64_t r0, int64_t r1) {
      if (n_tok == 1)
        t->i2s_gemv(w, 1.0f, s.k, r0, r1, q.data(), act_scale[0], act_sum[0], out.data());
      else if (!staged.empty())
        t->i2s_gemm_staged(w, 1.0f, s.k, r0, r1, q.data(), staged.data(), act_scale.data(),
                           act_sum.data(), n_tok, out.data(), s.rows);
      else
        t->i2s_gemm(w, 1.0f, s.k, r0, r1, q.data(), act_scale.data(), act_sum.data(), n_tok,
                    out.data(), s.rows);
    });
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_rates(state, static_cast<double>(s.rows * s.k / 4),
            static_cast<double>(s.rows * s.k * n_tok));
}

// One token through f16_gemm (the operand rounded to f16), more through f16_f32_gemm.
void bm_f16_head(benchmark::State& state, const Table* t, int64_t n_tok, int n_threads) {
  const uint16_t* pool = head_pool();
  const size_t head_elems = head_bytes() / sizeof(uint16_t);
  std::vector<uint16_t> x(static_cast<size_t>(n_tok * kHead.k));
  std::copy_n(pool, x.size(), x.begin());
  std::vector<float> xf(x.size());
  t->f16_to_f32(x.data(), static_cast<int64_t>(x.size()), xf.data());
  std::vector<float> out(static_cast<size_t>(n_tok * kHead.rows));
  ThreadPool& tp = thread_pool(n_threads);
  size_t i = 0;
  for (auto _ : state) {
    const uint16_t* w = pool + (i++ % kHeadCopies) * head_elems;
    tp.parallel_for(kHead.rows, kRowGranule, [&](int64_t r0, int64_t r1) {
      if (n_tok == 1)
        t->f16_gemm(w, kHead.k, r0, r1, x.data(), n_tok, out.data(), kHead.rows);
      else
        f16_f32_gemm(*t, w, kHead.k, r0, r1, xf.data(), n_tok, out.data(), kHead.rows);
    });
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_rates(state, static_cast<double>(kHead.rows * kHead.k * 2),
            static_cast<double>(kHead.rows * kHead.k * n_tok));
}

void bm_q8_head(benchmark::State& state, const Table* t, int64_t n_tok, int n_threads) {
  const uint8_t* pool = q8_head_pool();
  XorShift rng;
  std::vector<float> x(static_cast<size_t>(kHead.k));
  const int64_t xq_bytes = kHead.k / 32 * 34;
  std::vector<uint8_t> xq(static_cast<size_t>(n_tok * xq_bytes));
  for (int64_t tok = 0; tok < n_tok; ++tok) {
    for (float& v : x)
      v = static_cast<float>(static_cast<int>(rng.next() % 2001) - 1000) / 500.0f;
    t->quantize_q8_0(x.data(), kHead.k, xq.data() + tok * xq_bytes);
  }
  std::vector<float> out(static_cast<size_t>(n_tok * kHead.rows));
  ThreadPool& tp = thread_pool(n_threads);
  size_t i = 0;
  for (auto _ : state) {
    const uint8_t* w = pool + (i++ % kHeadCopies) * q8_head_bytes();
    tp.parallel_for(kHead.rows, kRowGranule, [&](int64_t r0, int64_t r1) {
      t->q8_0_gemm(w, kHead.k, r0, r1, xq.data(), n_tok, out.data(), kHead.rows);
    });
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_rates(state, static_cast<double>(kHead.rows * kHead.k / 32 * 34),
            static_cast<double>(kHead.rows * kHead.k * n_tok));
}

// The same pass on the groups layout (q8_0_screen), work split by groups as head_screen.cpp
// splits it.
void bm_screen(benchmark::State& state, const Table* t, int64_t n_tok, int n_threads) {
  const uint8_t* pool = screen_pool();
  XorShift rng;
  const int64_t nb = kHead.k / 32;
  std::vector<int8_t> xq(static_cast<size_t>(n_tok * kHead.k));
  for (int8_t& v : xq)
    v = static_cast<int8_t>(static_cast<int>(rng.next() % 255) - 127);
  std::vector<float> xd(static_cast<size_t>(n_tok * nb), 0x1p-7f);
  std::vector<int32_t> x_bias(static_cast<size_t>(n_tok * nb));
  for (size_t b = 0; b < x_bias.size(); ++b)
    for (int j = 0; j < 32; ++j)
      x_bias[b] -= 128 * xq[b * 32 + static_cast<size_t>(j)];
  std::vector<float> out(static_cast<size_t>(n_tok * kHead.rows));
  ThreadPool& tp = thread_pool(n_threads);
  const auto group_bytes = static_cast<size_t>(kernels::screen_group_bytes(kHead.k));
  size_t i = 0;
  for (auto _ : state) {
    const uint8_t* w = pool + (i++ % kHeadCopies) * screen_bytes();
    tp.parallel_for(kScreenGroups, 2, [&](int64_t g0, int64_t g1) {
      t->q8_0_screen(w + static_cast<size_t>(g0) * group_bytes, kHead.k, g1 - g0, xq.data(),
                     xd.data(), x_bias.data(), n_tok, out.data() + g0 * kernels::kScreenRows,
                     kHead.rows);
    });
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_rates(state, static_cast<double>(kScreenGroups * kernels::screen_group_bytes(kHead.k)),
            static_cast<double>(kHead.rows * kHead.k * n_tok));
}

// The attention shapes of 2B-4T; the cache holds 4096 positions of as many layers as fill 1 GiB.
constexpr int64_t kAttnCtx = 4096;
constexpr int64_t kAttnKv[] = {512, 2048, 4096};
constexpr int64_t kAttnBatch = 512; // a prefill chunk (run's default -b)

model::Config attn_config() {
  model::Config c;
  c.n_embd = 2560;
  c.n_head = 20;
  c.n_head_kv = 5;
  c.head_dim = 128;
  c.n_rot = 128;
  c.n_layer = static_cast<int64_t>(kPoolBytes / (2 * kAttnCtx * 640 * sizeof(uint16_t)));
  return c;
}

// K and V values of magnitude 2^-3 .. 2^0, like i2s_pool filled on first use.
model::KvCache& attn_cache() {
  static model::KvCache cache = [] {
    const model::Config c = attn_config();
    model::KvCache kv(c, kAttnCtx, true);
    XorShift rng;
    for (int64_t il = 0; il < c.n_layer; ++il)
      for (uint16_t* p : {kv.k16(il), kv.v16(il)})
        for (int64_t i = 0; i < kAttnCtx * c.n_embd_kv(); ++i) {
          const auto bits = static_cast<uint16_t>(rng.next());
          p[i] = static_cast<uint16_t>((bits & 0x83FFu) | ((12u + (bits >> 10) % 3u) << 10));
        }
    return kv;
  }();
  return cache;
}

// n_tok queries at positions n_kv - n_tok .. n_kv - 1, one layer per iteration (rotating).
// bytes/s counts the K and V read (n_kv positions), MAC/s the multiply-adds of q·Kᵀ and ·V over
// the positions each query sees.
void bm_attention(benchmark::State& state, const Table* t, int64_t n_kv, int64_t n_tok,
                  int n_threads) {
  const model::Config c = attn_config();
  model::KvCache& cache = attn_cache();
  model::Attention attention(c, *t, n_tok, kAttnCtx, n_threads);
  XorShift rng;
  std::vector<float> q(static_cast<size_t>(n_tok * c.n_embd)), out(q.size());
  for (float& v : q)
    v = static_cast<float>(static_cast<int>(rng.next() % 2001) - 1000) / 1000.0f;
  ThreadPool& tp = thread_pool(n_threads);
  int64_t il = 0;
  for (auto _ : state) {
    attention.run(q.data(), n_tok, n_kv - n_tok, cache, il, out.data(), tp);
    il = (il + 1) % c.n_layer;
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const double seen = static_cast<double>(n_tok) * static_cast<double>(n_kv - n_tok) +
                      static_cast<double>(n_tok * (n_tok + 1) / 2); // Σ positions seen
  set_rates(state, static_cast<double>(2 * n_kv * c.n_embd_kv() * 2),
            2.0 * static_cast<double>(c.n_head * c.head_dim) * seen);
}

// The 20 score rows of one decode step at depth 2048, each softmaxed in place (after the first
// iteration the rows hold probabilities, which cost the same); bytes/s counts the rows' floats.
void bm_softmax(benchmark::State& state, const Table* t, bool round_f16) {
  constexpr int64_t kRows = 20, kLen = 2048;
  XorShift rng;
  std::vector<float> s(static_cast<size_t>(kRows * kLen));
  for (float& v : s)
    v = static_cast<float>(static_cast<int>(rng.next() % 2001) - 1000) / 100.0f;
  for (auto _ : state) {
    for (int64_t r = 0; r < kRows; ++r)
      t->softmax(s.data() + r * kLen, kLen, 0.088388f, round_f16);
    benchmark::ClobberMemory();
  }
  set_rates(state, static_cast<double>(kRows * kLen * sizeof(float)), 0.0);
}

// Each thread sums its contiguous share of the 1 GiB pool.
void bm_stream_read(benchmark::State& state, const Probe* probe, int n_threads) {
  const uint8_t* pool = i2s_pool();
  ThreadPool& tp = thread_pool(n_threads);
  for (auto _ : state)
    benchmark::DoNotOptimize(probes::stream_read(*probe, tp, pool, kPoolBytes));
  set_rates(state, static_cast<double>(probes::stream_read_bytes(kPoolBytes, n_threads)), 0.0);
}

void bm_int8_peak(benchmark::State& state, const Probe* probe, int n_threads) {
  constexpr int64_t kIters = int64_t{1} << 20;
  ThreadPool& tp = thread_pool(n_threads);
  for (auto _ : state)
    benchmark::DoNotOptimize(probes::mac_run(*probe, tp, kIters));
  set_rates(state, 0.0, static_cast<double>(kIters * probe->macs_per_iter * n_threads));
}

enum class Kind { gemv, gemm, attention, stream_read, int8_peak };

struct Entry {
  Kind kind;
  std::string kernel; // e.g. "i2s_gemm 2560x6912 n=512"
  std::string isa;
  int threads;
};

// Keyed by benchmark name; in registration order for the table.
std::vector<std::pair<std::string, Entry>>& entries() {
  static std::vector<std::pair<std::string, Entry>> e;
  return e;
}

template <class Fn, class... Args> void add(Entry entry, Fn fn, Args... args) {
  const std::string name = fmt::format("{}/{}/t{}", entry.kernel, entry.isa, entry.threads);
  std::string bm_name = name;
  std::replace(bm_name.begin(), bm_name.end(), ' ', '/');
  benchmark::RegisterBenchmark(bm_name.c_str(), fn, args...)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  entries().emplace_back(bm_name, std::move(entry));
}

void register_all() {
  const auto isas = kernels::available_isas();
  const Probe* best = &probes::probe_for(isas.back());
  for (int n : kThreadCounts)
    add({Kind::stream_read, "probe stream_read", best->isa, n}, bm_stream_read, best, n);
  for (Isa isa : isas) {
    const Probe* probe = &probes::probe_for(isa);
    for (int n : kThreadCounts)
      add({Kind::int8_peak, "probe int8_mac_peak", probe->isa, n}, bm_int8_peak, probe, n);
  }
  for (Isa isa : isas) {
    const Table* t = &kernels::table_for(isa);
    const std::string name = kernels::to_string(isa);
    for (int n : kThreadCounts) {
      for (Shape s : kI2sShapes)
        add({Kind::gemv, fmt::format("i2s_gemv {}x{}", s.rows, s.k), name, n}, bm_i2s, t, s,
            int64_t{1}, n);
      add({Kind::gemv, fmt::format("f16_gemv {}x{}", kHead.rows, kHead.k), name, n}, bm_f16_head, t,
          int64_t{1}, n);
      add({Kind::gemv, fmt::format("q8_0_gemv {}x{} (screen rows)", kHead.rows, kHead.k), name, n},
          bm_q8_head, t, int64_t{1}, n);
      add({Kind::gemv, fmt::format("q8_0_screen {}x{} (groups)", kHead.rows, kHead.k), name, n},
          bm_screen, t, int64_t{1}, n);
      // A batched decode step, against the bandwidth too (the scalar reference: minutes).
      if (isa != Isa::scalar) {
        for (Shape s : kI2sShapes)
          add({Kind::gemv, fmt::format("i2s_gemm {}x{} n={}", s.rows, s.k, kDecodeBatch), name, n},
              bm_i2s, t, s, kDecodeBatch, n);
        add({Kind::gemv,
             fmt::format("q8_0_gemm {}x{} n={} (screen rows)", kHead.rows, kHead.k, kDecodeBatch),
             name, n},
            bm_q8_head, t, kDecodeBatch, n);
        add({Kind::gemv,
             fmt::format("q8_0_screen {}x{} n={} (groups)", kHead.rows, kHead.k, kDecodeBatch),
             name, n},
            bm_screen, t, kDecodeBatch, n);
      }
      for (Shape s : kI2sShapes)
        for (int64_t n_tok : kGemmTokens)
          add({Kind::gemm, fmt::format("i2s_gemm {}x{} n={}", s.rows, s.k, n_tok), name, n}, bm_i2s,
              t, s, n_tok, n);
      add({Kind::gemm, fmt::format("f16_f32_gemm {}x{} n={}", kHead.rows, kHead.k, kHeadGemmTokens),
           name, n},
          bm_f16_head, t, kHeadGemmTokens, n);
      for (int64_t n_kv : kAttnKv)
        add({Kind::gemv, fmt::format("attention n=1 n_kv={}", n_kv), name, n}, bm_attention, t,
            n_kv, int64_t{1}, n);
      // The scalar reference takes minutes per batch: only the vector variants.
      if (isa != Isa::scalar)
        for (int64_t n_kv : kAttnKv)
          add({Kind::attention, fmt::format("attention n={} n_kv={}", kAttnBatch, n_kv), name, n},
              bm_attention, t, n_kv, kAttnBatch, n);
    }
    for (bool round_f16 : {true, false})
      add({Kind::attention, round_f16 ? "softmax 20x2048 rounded" : "softmax 20x2048", name, 1},
          bm_softmax, t, round_f16);
  }
}

// The console output, plus a closing table of each kernel's share of its physical limit:
// gemv against the streaming-read bandwidth, I2_S gemm against the int8 MAC peak of its own
// variant's instruction, each measured at the same thread count.
class SummaryReporter : public benchmark::ConsoleReporter {
public:
  // Colour only on a terminal: the output is often kept in a file.
  SummaryReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_ColorTabular : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (run.run_type == Run::RT_Aggregate && !median) continue;
      Result& r = results_[run.run_name.function_name];
      if (r.median && !median) continue;
      r = {counter(run, "bytes/s"), counter(run, "MAC/s"), median};
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    std::ostringstream os;
    os << fmt::format("\nShare of the physical limits (medians; CPU: {}).\n",
                      kernels::cpu_description());
    os << "MAC peaks:";
    for (Isa isa : kernels::available_isas())
      os << fmt::format(" {} {};", kernels::to_string(isa), probes::probe_for(isa).mac_instruction);
    os << " bandwidth: streaming read of 1 GiB.\n";
    os << fmt::format("{:<34} {:<13} {:>3} {:>8} {:>8} {:>9} {:>8}\n", "kernel", "isa", "thr",
                      "GB/s", "%bw", "GMAC/s", "%peak");
    for (const auto& [name, e] : entries()) {
      const auto it = results_.find(name);
      if (it == results_.end()) continue;
      const Result& r = it->second;
      std::string bw_share, peak_share;
      if (e.kind == Kind::gemv) bw_share = share(r.bytes_per_s, Kind::stream_read, "", e.threads);
      if (e.kind == Kind::gemm && e.kernel.starts_with("i2s"))
        peak_share = share(r.macs_per_s, Kind::int8_peak, e.isa, e.threads);
      os << fmt::format("{:<34} {:<13} {:>3} {:>8} {:>8} {:>9} {:>8}\n", e.kernel, e.isa, e.threads,
                        rate(r.bytes_per_s), bw_share, rate(r.macs_per_s), peak_share);
    }
    GetOutputStream() << os.str() << std::flush;
  }

private:
  struct Result {
    double bytes_per_s = 0;
    double macs_per_s = 0;
    bool median = false;
  };

  static double counter(const Run& run, const char* name) {
    const auto it = run.counters.find(name);
    return it == run.counters.end() ? 0.0 : it->second.value;
  }

  static std::string rate(double per_s) {
    return per_s > 0 ? fmt::format("{:.2f}", per_s / 1e9) : "";
  }

  // value as a percentage of the probe of `kind` (of variant `isa`, unless empty) at the
  // same thread count.
  std::string share(double value, Kind kind, const std::string& isa, int threads) const {
    for (const auto& [name, e] : entries()) {
      if (e.kind != kind || e.threads != threads || (!isa.empty() && e.isa != isa)) continue;
      const auto it = results_.find(name);
      if (it == results_.end()) return "";
      const double limit =
          kind == Kind::stream_read ? it->second.bytes_per_s : it->second.macs_per_s;
      return limit > 0 ? fmt::format("{:.0f}%", 100.0 * value / limit) : "";
    }
    return "";
  }

  std::map<std::string, Result> results_;
};

bool has_flag(int argc, char** argv, std::string_view prefix) {
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]).starts_with(prefix)) return true;
  return false;
}

} // namespace
} // namespace bitnet::bench

int main(int argc, char** argv) {
  using namespace bitnet::bench;
  // Medians of several repetitions unless the command line says otherwise.
  std::vector<char*> args(argv, argv + argc);
  std::string reps = "--benchmark_repetitions=3";
  std::string aggregates = "--benchmark_report_aggregates_only=true";
  if (!has_flag(argc, argv, "--benchmark_repetitions")) args.push_back(reps.data());
  if (!has_flag(argc, argv, "--benchmark_report_aggregates_only") &&
      !has_flag(argc, argv, "--benchmark_display_aggregates_only"))
    args.push_back(aggregates.data());
  int n_args = static_cast<int>(args.size());
  benchmark::Initialize(&n_args, args.data());
  if (benchmark::ReportUnrecognizedArguments(n_args, args.data())) return 1;
  try {
    register_all();
    SummaryReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_kernels: {}\n", e.what());
    return 1;
  }
  benchmark::Shutdown();
  return 0;
}
