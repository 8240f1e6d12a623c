#include "model/head_screen.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <queue>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bitnet/error.hpp"
#include "model/weights.hpp"
#include "util/fp16.hpp"

namespace bitnet::model {

// The bound. Notation for one row r and one step:
//   w    the row's F16 weights (reals), ŵ its Q8_0 copy (ŵ_i = d_b·q_i, exact in float);
//   x    the f16-rounded head input (the exact kernel's operand), x̂ its Q8_0 copy, made by
//        the same quantize_q8_0 (per block of 32: an outlier feature coarsens its block only);
//   E    the float the exact kernel returns (ggml_vec_dot_f16's order), A the float the screen
//        kernel returns (q8_0_gemm for the rows layout, q8_0_screen for the groups layout);
//        S = Σ w_i·x_i and Ŝ = Σ ŵ_i·x̂_i exact.
// Then E − A = (E − S) + (S − Ŝ) + (Ŝ − A) and
//   S − Ŝ = Σ (w_i − ŵ_i)·x_i + Σ ŵ_i·(x_i − x̂_i)
//   |S − Ŝ| <= ‖w − ŵ‖·‖x‖ + ‖ŵ‖·‖x − x̂‖                        (Cauchy–Schwarz, per row)
// Float summation, with u = 2^-24 and γ_n = n·u / (1 − n·u) (Higham, Thm 3.1 / §4.2): a
// sum in which every term goes through at most n roundings is within γ_n·Σ|terms|.
//   Exact kernel: the products of two halves are exact; each lane adds k/64 of them, then
//   2 levels join the four accumulators, 4 levels halve the 16 lanes, and the k % 64 tail
//   is added in double and rounded once: n_e = k/64 + 8 covers it (two spare levels for
//   the double tail, whose error is below 2^-47 relative). Σ|w_i·x_i| <= ‖w‖·‖x‖ and
//   ‖w‖ <= ‖ŵ‖ + ‖w − ŵ‖, so |E − S| <= γ_{n_e}·(‖ŵ‖ + ‖w − ŵ‖)·‖x‖.
//   Screen kernel: a block's scale product d_w·d_x (two halves) and its integer sums are
//   exact. q8_0_gemm: each of the 8 lanes takes one rounding per block (fma), then 3
//   halving levels: n_s = k/32 + 3. q8_0_screen: the row's one lane takes one rounding per
//   block (fma) and nothing else: n_s = k/32. Either way |Ŝ − A| <= γ_{n_s}·‖ŵ‖·‖x̂‖.
// So, with ew >= ‖w − ŵ‖ and wn >= ‖ŵ‖ per row (built once), X >= ‖x‖, EX >= ‖x − x̂‖ and
// XH >= ‖x̂‖ per step:
//   |E − A| <= ew·α + wn·β,   α = (1 + γ_{n_e})·X,   β = EX + γ_{n_s}·XH + γ_{n_e}·X.
// The norms are float sums made upper bounds (norms_up); ew and wn are rounded up to float.
// Computing B_r = ew·α + wn·β and A ± B_r in double adds a few roundings of 2^-53: α and β
// are inflated by 1 + 2^-40 and B_r gets 2^-40·|A| more, which covers them, plus 2^-100 for
// any underflow in either kernel (each of its ~k operations loses at most 2^-150). On top, a
// safety margin: α and β are multiplied by 1 + 2^-7, against a slip in this accounting (it
// costs a few candidates). Finally lower = A − B_r rounded down to float, upper = A + B_r
// rounded up, so E lies in [lower, upper].

namespace {

constexpr double kSafety = 1.0 + 0x1p-7;
constexpr double kDoubleSlack = 1.0 + 0x1p-40;
constexpr double kNormSlack = 1.0 + 0x1p-28;
constexpr double kUnderflow = 0x1p-100;
constexpr int64_t kMaxK = int64_t{1} << 20; // keeps the summation depths' γ far below 1
constexpr int64_t kHeadReadRows = 32;       // exact rows read per chunk in a step
constexpr int64_t kRowGranule = 32;         // rows per work item of the bound pass (rows)
constexpr int64_t kGroupGranule = 2;        // row groups per work item of the bound pass (groups)

size_t sz(int64_t n) {
  return static_cast<size_t>(n);
}

double gamma(int64_t n) {
  const double nu = static_cast<double>(n) * 0x1p-24;
  return nu / (1.0 - nu) * kDoubleSlack;
}

// v rounded to float downwards / upwards: (float)v, moved one float towards -∞ / +∞ when
// that is on the wrong side of v; a NaN stays NaN. The step is nextafterf's on the bits (a
// float's neighbours are its bit pattern ± 1; from ±0 the smallest subnormal of the sign)
// so that the bound pass's loop vectorises instead of calling nextafterf per row.
float round_down(double v) {
  const auto f = static_cast<float>(v);
  const auto b = std::bit_cast<uint32_t>(f);
  const uint32_t down = f > 0.0f ? b - 1 : f < 0.0f ? b + 1 : 0x80000001u;
  return static_cast<double>(f) > v ? std::bit_cast<float>(down) : f;
}

float round_up(double v) {
  const auto f = static_cast<float>(v);
  const auto b = std::bit_cast<uint32_t>(f);
  const uint32_t up = f > 0.0f ? b + 1 : f < 0.0f ? b - 1 : 0x00000001u;
  return static_cast<double>(f) < v ? std::bit_cast<float>(up) : f;
}

// Upper bounds of ‖a − b‖ and ‖b‖ where a holds halves and b its Q8_0 copy (ŵ for a head
// row, x̂ for an operand). Each a_i − b_i is exact in float (both are multiples of the finer
// of a_i's ulp and the block scale's ulp, within 2^19 of it, or b_i = 0), each square is
// rounded once and each of 8 lanes sums n/8 of them before 3 halving levels, so both sums
// are within γ_{n/8+4} of the exact ones (nonnegative terms); γ_{n/8+6} is used, as if the
// difference were rounded too, and multiplying by 1 + 2γ bounds them from above. No term underflows
// (all values are multiples of 2^-24) or overflows
// (|a| <= 65504). A non-finite a gives a non-finite bound.
void norms_up(const float* a, const float* b, int64_t n, double& diff_norm, double& b_norm) {
  float d[8] = {}, s[8] = {};
  for (int64_t i = 0; i < n; i += 8) // (two loops: each one vectorises cleanly)
    for (int l = 0; l < 8; ++l) {
      const float e = a[i + l] - b[i + l];
      d[l] += e * e;
    }
  for (int64_t i = 0; i < n; i += 8)
    for (int l = 0; l < 8; ++l)
      s[l] += b[i + l] * b[i + l];
  for (int w = 4; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) {
      d[l] += d[l + w];
      s[l] += s[l + w];
    }
  const double up = 1.0 + 2.0 * gamma(n / 8 + 6);
  diff_norm = std::sqrt(static_cast<double>(d[0]) * up * kNormSlack);
  b_norm = std::sqrt(static_cast<double>(s[0]) * up * kNormSlack);
}

uint64_t q8_row_bytes(int64_t k) {
  return static_cast<uint64_t>(k / kernels::kQ8Block) * 34;
}

int64_t groups_of(int64_t rows) {
  return (rows + kernels::kScreenRows - 1) / kernels::kScreenRows;
}

// Row l of a q8_0_screen group from the row's Q8_0 blocks (kernels.hpp has the layout).
void put_group_row(const uint8_t* blocks, int64_t k, int64_t l, uint8_t* group) {
  const int64_t nb = k / kernels::kQ8Block;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* block = blocks + b * 34;
    uint8_t* quants = group + b * kernels::kScreenBlockBytes + 4 * l;
    for (int64_t i = 0; i < kernels::kQ8Block; ++i)
      quants[64 * (i / 4) + i % 4] = static_cast<uint8_t>(block[2 + i] ^ 0x80); // q + 128
    std::memcpy(group + b * kernels::kScreenBlockBytes + kernels::kScreenQuantBytes + 2 * l, block,
                2);
  }
}

} // namespace

HeadScreen::HeadScreen(int64_t rows, int64_t k, const HeadRowReader& read,
                       const kernels::Table& table, kernels::ThreadPool& pool, ScreenLayout layout)
    : rows_(rows), k_(k), layout_(layout) {
  if (rows < 1 || k < kernels::kQ8Block || k % kernels::kQ8Block != 0 || k > kMaxK)
    throw Error(ErrorKind::unsupported,
                fmt::format("head of {} rows × {} cannot be screened", rows, k));
  const bool grouped = layout == ScreenLayout::groups;
  const uint64_t row_bytes = q8_row_bytes(k);
  const auto group_bytes = static_cast<uint64_t>(kernels::screen_group_bytes(k));
  q8_ = ZeroedPages(grouped ? sz(groups_of(rows)) * group_bytes : sz(rows) * row_bytes);
  auto* const q8 = static_cast<uint8_t*>(q8_.data());
  err_norm_.resize(sz(rows));
  q8_norm_.resize(sz(rows));
  std::atomic<bool> finite{true};
  // Work in groups of kScreenRows rows (either layout); a group's padding rows (groups only)
  // are all zero.
  constexpr int64_t kGroup = kernels::kScreenRows;
  pool.parallel_for(groups_of(rows), 1, [&](int64_t g0, int64_t g1) {
    std::vector<uint16_t> half(sz(kGroup * k));
    std::vector<float> w(sz(k)), w_hat(sz(k));
    std::vector<uint8_t> blocks(row_bytes);
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t c0 = g * kGroup, n = std::min(kGroup, rows - c0);
      read(c0, n, half.data());
      std::fill(half.begin() + n * k, half.end(), uint16_t{0});
      for (int64_t i = 0; i < (grouped ? kGroup : n); ++i) {
        const int64_t r = c0 + i;
        uint8_t* const q = grouped ? blocks.data() : q8 + sz(r) * row_bytes;
        table.f16_to_f32(half.data() + i * k, k, w.data());
        table.quantize_q8_0(w.data(), k, q);
        if (grouped) put_group_row(q, k, i, q8 + sz(g) * group_bytes);
        if (i >= n) continue;
        table.q8_0_to_f32(q, k, w_hat.data());
        double err = 0.0, norm = 0.0;
        norms_up(w.data(), w_hat.data(), k, err, norm);
        if (!std::isfinite(err)) finite.store(false, std::memory_order_relaxed);
        err_norm_[sz(r)] = round_up(err);
        q8_norm_[sz(r)] = round_up(norm);
      }
    }
  });
  usable_ = finite.load();
}

std::unique_ptr<HeadScreen> screen_head(const Weights& w, const kernels::Table& table,
                                        kernels::ThreadPool& pool, ScreenLayout layout) {
  const DenseMatrix& head = w.output;
  if (head.type != gguf::TensorType::F16) return nullptr;
  auto screen = std::make_unique<HeadScreen>(
      head.rows, head.k,
      [&](int64_t first, int64_t count, uint16_t* dst) {
        w.read_rows(head, first, count, reinterpret_cast<uint8_t*>(dst));
      },
      table, pool, layout);
  if (!screen->usable()) {
    spdlog::warn("the output head holds a non-finite weight: no screen, every step computes "
                 "the whole head");
    return nullptr;
  }
  return screen;
}

uint64_t HeadScreen::bytes() const {
  const uint64_t q8 = layout_ == ScreenLayout::groups
                          ? static_cast<uint64_t>(groups_of(rows_)) *
                                static_cast<uint64_t>(kernels::screen_group_bytes(k_))
                          : static_cast<uint64_t>(rows_) * q8_row_bytes(k_);
  return q8 + static_cast<uint64_t>(rows_) * 2 * sizeof(float);
}

bool HeadScreen::bound(const uint16_t* x16, std::span<float> lower, std::span<float> upper,
                       const kernels::Table& table, kernels::ThreadPool& pool, int64_t n_x) const {
  const bool grouped = layout_ == ScreenLayout::groups;
  const int64_t nb = k_ / kernels::kQ8Block;
  const uint64_t xq_bytes = q8_row_bytes(k_);
  std::vector<float> x(sz(k_)), x_hat(sz(k_));
  // The operand as Q8_0 blocks (q8_0_gemm's), and for groups as q8_0_screen takes it
  // (kernels.hpp): the int8 values, block scales and biases.
  std::vector<uint8_t> blocks(sz(n_x) * xq_bytes);
  std::vector<int8_t> xq(grouped ? sz(n_x * k_) : 0);
  std::vector<float> xd(grouped ? sz(n_x * nb) : 0);
  std::vector<int32_t> x_bias(grouped ? sz(n_x * nb) : 0);
  std::vector<double> alpha(sz(n_x)), beta(sz(n_x));
  for (int64_t t = 0; t < n_x; ++t) {
    table.f16_to_f32(x16 + t * k_, k_, x.data());
    if (!std::all_of(x.begin(), x.end(), [](float v) { return std::isfinite(v); })) return false;
    uint8_t* q = blocks.data() + sz(t) * xq_bytes;
    table.quantize_q8_0(x.data(), k_, q);
    table.q8_0_to_f32(q, k_, x_hat.data());
    for (int64_t b = 0; grouped && b < nb; ++b) {
      const uint8_t* block = q + b * 34;
      int32_t sum = 0;
      for (int64_t i = 0; i < kernels::kQ8Block; ++i) {
        const auto v = static_cast<int8_t>(block[2 + i]);
        xq[sz(t * k_ + b * kernels::kQ8Block + i)] = v;
        sum += v;
      }
      uint16_t d;
      std::memcpy(&d, block, sizeof d);
      xd[sz(t * nb + b)] = fp16_to_fp32(d);
      x_bias[sz(t * nb + b)] = -128 * sum;
    }
    double EX = 0.0, XH = 0.0, X = 0.0, unused = 0.0;
    norms_up(x.data(), x_hat.data(), k_, EX, XH);
    norms_up(x.data(), x.data(), k_, unused, X);
    const double g_e = gamma(k_ / 64 + 8), g_s = gamma(grouped ? nb : nb + 3);
    alpha[sz(t)] = (1.0 + g_e) * X * kDoubleSlack * kSafety;
    beta[sz(t)] = (EX + g_s * XH + g_e * X) * kDoubleSlack * kSafety;
  }

  // The approximate logits of rows [r0, r1) are in `lower`: each becomes its interval.
  const auto intervals = [&](int64_t r0, int64_t r1) {
    for (int64_t t = 0; t < n_x; ++t)
      for (int64_t r = r0; r < r1; ++r) {
        const size_t i = sz(t * rows_ + r);
        const double a = lower[i];
        const double b = static_cast<double>(err_norm_[sz(r)]) * alpha[sz(t)] +
                         static_cast<double>(q8_norm_[sz(r)]) * beta[sz(t)] +
                         std::fabs(a) * 0x1p-40 + kUnderflow;
        lower[i] = round_down(a - b);
        upper[i] = round_up(a + b);
      }
  };
  const auto* const q8 = static_cast<const uint8_t*>(q8_.data());
  if (!grouped) {
    pool.parallel_for(rows_, kRowGranule, [&](int64_t r0, int64_t r1) {
      // (g_s bounds the rounding of a sum of k/32 block products in any order, so the
      // inputs' products may be computed together.)
      table.q8_0_gemm(q8, k_, r0, r1, blocks.data(), n_x, lower.data(), rows_);
      intervals(r0, r1);
    });
    return true;
  }
  const int64_t full_groups = rows_ / kernels::kScreenRows;
  const auto group_bytes = static_cast<size_t>(kernels::screen_group_bytes(k_));
  pool.parallel_for(groups_of(rows_), kGroupGranule, [&](int64_t g0, int64_t g1) {
    // A last group with padding rows goes through `tail`, so that nothing is written past a
    // row range.
    const int64_t g_full = std::min(g1, full_groups);
    if (g0 < g_full)
      table.q8_0_screen(q8 + sz(g0) * group_bytes, k_, g_full - g0, xq.data(), xd.data(),
                        x_bias.data(), n_x, lower.data() + g0 * kernels::kScreenRows, rows_);
    if (g1 > full_groups) {
      std::vector<float> tail(sz(n_x * kernels::kScreenRows));
      table.q8_0_screen(q8 + sz(full_groups) * group_bytes, k_, 1, xq.data(), xd.data(),
                        x_bias.data(), n_x, tail.data(), kernels::kScreenRows);
      for (int64_t t = 0; t < n_x; ++t)
        for (int64_t r = full_groups * kernels::kScreenRows; r < rows_; ++r)
          lower[sz(t * rows_ + r)] = tail[sz(t * kernels::kScreenRows + r % kernels::kScreenRows)];
    }
    intervals(g0 * kernels::kScreenRows, std::min(rows_, g1 * kernels::kScreenRows));
  });
  return true;
}

void select_candidates(std::span<const float> lower, std::span<const float> upper, int64_t m,
                       std::vector<int32_t>& out) {
  const auto n = static_cast<int64_t>(lower.size());
  if (m < 1 || m > n) throw Error(ErrorKind::invalid_argument, "select_candidates: bad m");
  // Both passes look at a span of kSpan values at once first (a loop the compiler vectorizes)
  // and go through it value by value only when one of them matters, which after the first
  // few spans is rare: the same τ and the same rows, in a fraction of the time.
  constexpr int64_t kSpan = 64;
  const auto any_above = [](const float* v, int64_t count, float t, bool or_equal) {
    bool any = false;
    for (int64_t i = 0; i < count; ++i)
      any |= or_equal ? v[i] >= t : v[i] > t;
    return any;
  };
  // τ = the m-th largest lower bound: a min-heap of the m largest seen so far.
  std::priority_queue<float, std::vector<float>, std::greater<float>> top;
  for (int64_t r0 = 0; r0 < n; r0 += kSpan) {
    const int64_t count = std::min(kSpan, n - r0);
    if (static_cast<int64_t>(top.size()) == m &&
        !any_above(&lower[sz(r0)], count, top.top(), false))
      continue;
    for (int64_t r = r0; r < r0 + count; ++r) {
      const float l = lower[sz(r)];
      if (static_cast<int64_t>(top.size()) < m) {
        top.push(l);
      } else if (l > top.top()) {
        top.pop();
        top.push(l);
      }
    }
  }
  const float tau = top.top();
  out.clear();
  for (int64_t r0 = 0; r0 < n; r0 += kSpan) {
    const int64_t count = std::min(kSpan, n - r0);
    if (!any_above(&upper[sz(r0)], count, tau, true)) continue;
    for (int64_t r = r0; r < r0 + count; ++r)
      if (upper[sz(r)] >= tau) out.push_back(static_cast<int32_t>(r));
  }
}

namespace {

// The exact logits of every query's ids (queries[t].out: ascending ids in, logits out) for
// operand t of x16, through `read`, on all threads, in one parallel region. A row several
// queries want is read once for all of them: the threads split the union of the ids, read
// runs of consecutive ones, and give each query its own runs of them. Every dot is the full
// head's (f16_gemm, one token).
void exact_rows(std::span<const HeadQuery> queries, int64_t k, const uint16_t* x16,
                const HeadRowReader& read, const kernels::Table& table, kernels::ThreadPool& pool,
                std::vector<uint16_t>& buf) {
  const auto n_x = static_cast<int64_t>(queries.size());
  std::vector<int32_t> all;
  for (const HeadQuery& q : queries) {
    q.out->logits.resize(q.out->ids.size());
    all.insert(all.end(), q.out->ids.begin(), q.out->ids.end());
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  const auto n = static_cast<int64_t>(all.size());
  const int threads = pool.size();
  buf.resize(sz(threads * kHeadReadRows * k));
  pool.run([&](int ti, int nt) {
    uint16_t* rows = buf.data() + sz(ti * kHeadReadRows * k);
    const int64_t begin = n * ti / nt, end = n * (ti + 1) / nt;
    if (begin == end) return;
    std::vector<size_t> next(sz(n_x)); // per query: its first id not done yet
    for (int64_t t = 0; t < n_x; ++t) {
      const std::vector<int32_t>& ids = queries[sz(t)].out->ids;
      next[sz(t)] = sz(std::lower_bound(ids.begin(), ids.end(), all[sz(begin)]) - ids.begin());
    }
    for (int64_t i = begin; i < end;) {
      const int32_t first = all[sz(i)];
      int64_t run = 1;
      while (i + run < end && run < kHeadReadRows && all[sz(i + run)] == first + run)
        ++run;
      read(first, run, rows);
      for (int64_t t = 0; t < n_x; ++t) {
        const std::vector<int32_t>& ids = queries[sz(t)].out->ids;
        float* logits = queries[sz(t)].out->logits.data();
        size_t& j = next[sz(t)];
        while (j < ids.size() && ids[j] < first + run) { // this query's runs inside the read
          size_t len = 1;
          while (j + len < ids.size() && ids[j + len] == ids[j] + static_cast<int32_t>(len) &&
                 ids[j + len] < first + run)
            ++len;
          const auto n_rows = static_cast<int64_t>(len);
          table.f16_gemm(rows + (ids[j] - first) * k, k, 0, n_rows, x16 + t * k, 1, logits + j,
                         n_rows);
          j += len;
        }
      }
      i += run;
    }
  });
}

} // namespace

void screened_top(const HeadScreen& screen, const uint16_t* x16, int64_t m,
                  const BoundsAdjust& adjust, const HeadRowReader& exact_read,
                  const kernels::Table& table, kernels::ThreadPool& pool, HeadScratch& scratch,
                  HeadTop& out) {
  const HeadQuery query{m, &adjust, &out};
  screened_tops(screen, x16, {&query, 1}, exact_read, table, pool, scratch);
}

void screened_tops(const HeadScreen& screen, const uint16_t* x16,
                   std::span<const HeadQuery> queries, const HeadRowReader& exact_read,
                   const kernels::Table& table, kernels::ThreadPool& pool, HeadScratch& scratch) {
  const int64_t rows = screen.rows(), k = screen.k();
  const auto n_x = static_cast<int64_t>(queries.size());
  const int64_t limit = rows / kFallbackDivisor;
  bool wanted = false; // whether any query can use the bounds
  for (const HeadQuery& q : queries) {
    if (q.m < 1 || q.m > rows) throw Error(ErrorKind::invalid_argument, "screened_top: bad m");
    q.out->full = true;
    q.out->screen_read = false;
    wanted = wanted || q.m <= limit;
  }
  if (screen.usable() && wanted) {
    scratch.lower.resize(sz(n_x * rows));
    scratch.upper.resize(sz(n_x * rows));
    const bool bounded = screen.bound(x16, scratch.lower, scratch.upper, table, pool, n_x);
    for (int64_t t = 0; bounded && t < n_x; ++t) {
      const HeadQuery& q = queries[sz(t)];
      if (q.m > limit) continue;
      const std::span<float> lower(scratch.lower.data() + t * rows, sz(rows));
      const std::span<float> upper(scratch.upper.data() + t * rows, sz(rows));
      q.out->screen_read = true;
      if (q.adjust && *q.adjust) (*q.adjust)(lower, upper);
      select_candidates(lower, upper, q.m, q.out->ids);
      q.out->full = static_cast<int64_t>(q.out->ids.size()) > limit;
    }
  }
  for (const HeadQuery& q : queries) {
    HeadTop& out = *q.out;
    if (out.full) {
      out.ids.resize(sz(rows));
      for (int64_t r = 0; r < rows; ++r)
        out.ids[sz(r)] = static_cast<int32_t>(r);
    }
  }
  exact_rows(queries, k, x16, exact_read, table, pool, scratch.rows);
}

} // namespace bitnet::model
