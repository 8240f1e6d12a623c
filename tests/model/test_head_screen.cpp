// The screened head (src/model/head_screen.*): the interval of every row holds the float the
// exact F16 kernel computes, on every kernel variant; crafted rows reach the bound (so it is
// tight and the check can fail); the candidate set always holds the true top m, ties
// included, over 10^5 random trials; the step's logits are the full head's bit for bit, and
// the fallback computes the whole head.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"
#include "model/head_screen.hpp"
#include "util/fp16.hpp"

namespace bitnet::model {
namespace {

using kernels::Isa;
using kernels::Table;

struct Head {
  int64_t rows = 0;
  int64_t k = 0;
  std::vector<uint16_t> w; // [rows][k] halves

  HeadRowReader reader() const {
    return [this](int64_t first, int64_t count, uint16_t* dst) {
      ASSERT_GE(first, 0);
      ASSERT_LE(first + count, rows);
      std::memcpy(dst, w.data() + first * k, static_cast<size_t>(count * k) * sizeof(uint16_t));
    };
  }
};

// (The kernels' conversion: bit-exact with util/fp16.hpp, tests/kernels checks it.)
std::vector<uint16_t> to_half(const std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  kernels::table().f32_to_f16(v.data(), static_cast<int64_t>(v.size()), h.data());
  return h;
}

Head make_head(int64_t rows, int64_t k, const std::vector<float>& values) {
  return Head{rows, k, to_half(values)};
}

// The full exact head for one operand: what the decode step computes without a screen.
std::vector<float> exact_logits(const Head& h, const std::vector<uint16_t>& x16, const Table& t) {
  std::vector<float> out(static_cast<size_t>(h.rows));
  t.f16_gemm(h.w.data(), h.k, 0, h.rows, x16.data(), 1, out.data(), h.rows);
  return out;
}

// The true top m by (logit descending, id ascending), extended by every row tied with the
// m-th: all rows a correct candidate set must hold.
std::set<int32_t> true_top(const std::vector<float>& logits, int64_t m) {
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i)
    ids[i] = static_cast<int32_t>(i);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
           (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
  });
  const float mth = logits[static_cast<size_t>(ids[static_cast<size_t>(m - 1)])];
  std::set<int32_t> top;
  for (int32_t id : ids)
    if (logits[static_cast<size_t>(id)] >= mth) top.insert(id);
  return top;
}

struct Bounds {
  std::vector<float> lower, upper;
};

Bounds bound(const HeadScreen& s, const std::vector<uint16_t>& x16, const Table& t,
             kernels::ThreadPool& pool) {
  Bounds b{std::vector<float>(static_cast<size_t>(s.rows())),
           std::vector<float>(static_cast<size_t>(s.rows()))};
  EXPECT_TRUE(s.bound(x16.data(), b.lower, b.upper, t, pool));
  return b;
}

std::vector<float> gaussian(std::mt19937& rng, int64_t n, float sigma) {
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v)
    x = d(rng);
  return v;
}

// Operands and heads of several shapes: trained-like, outlier features, tiny (subnormal
// halves), huge, and degenerate blocks.
struct Case {
  std::string name;
  Head head;
  std::vector<uint16_t> x16;
};

std::vector<Case> cases() {
  std::mt19937 rng(12);
  std::vector<Case> out;
  for (int64_t k : {32, 96, 256, 2560}) {
    const int64_t rows = 67;
    auto w = gaussian(rng, rows * k, 0.02f);
    auto x = gaussian(rng, k, 1.0f);
    out.push_back({fmt::format("gaussian k={}", k), make_head(rows, k, w), to_half(x)});

    auto xo = x; // outlier features, and rows that weigh them heavily
    for (int64_t i = 5; i < k; i += 97)
      xo[static_cast<size_t>(i)] = (i % 2 ? 1.0f : -1.0f) * 300.0f;
    auto wo = w;
    for (int64_t r = 0; r < rows; r += 3)
      wo[static_cast<size_t>(r * k + 5)] = 0.8f;
    out.push_back({fmt::format("outliers k={}", k), make_head(rows, k, wo), to_half(xo)});

    std::vector<float> wt(w.size()), xt(x.size()); // subnormal halves and products
    for (size_t i = 0; i < w.size(); ++i)
      wt[i] = w[i] * 1e-4f;
    for (size_t i = 0; i < x.size(); ++i)
      xt[i] = x[i] * 1e-3f;
    out.push_back({fmt::format("tiny k={}", k), make_head(rows, k, wt), to_half(xt)});

    std::vector<float> wh(w.size()), xh(x.size());
    for (size_t i = 0; i < w.size(); ++i)
      wh[i] = w[i] * 3e4f;
    for (size_t i = 0; i < x.size(); ++i)
      xh[i] = std::clamp(x[i] * 2e4f, -65000.0f, 65000.0f);
    out.push_back({fmt::format("huge k={}", k), make_head(rows, k, wh), to_half(xh)});

    auto wd = w; // zero blocks, a constant row, a zero row
    std::fill(wd.begin(), wd.begin() + 32, 0.0f);
    std::fill(wd.begin() + k, wd.begin() + 2 * k, 0.125f);
    std::fill(wd.begin() + 2 * k, wd.begin() + 3 * k, 0.0f);
    auto xd = x;
    std::fill(xd.begin(), xd.begin() + 32, 0.0f);
    out.push_back({fmt::format("degenerate k={}", k), make_head(rows, k, wd), to_half(xd)});
  }
  return out;
}

constexpr ScreenLayout kLayouts[] = {ScreenLayout::rows, ScreenLayout::groups};

const char* name_of(ScreenLayout layout) {
  return layout == ScreenLayout::rows ? "rows" : "groups";
}

TEST(HeadScreen, EveryIntervalHoldsTheExactLogitOnEveryIsa) {
  kernels::ThreadPool pool(2);
  for (const Case& c : cases())
    for (ScreenLayout layout : kLayouts) {
      std::vector<float> first_lower, first_upper;
      for (Isa isa : kernels::available_isas()) {
        const Table& t = kernels::table_for(isa);
        const HeadScreen s(c.head.rows, c.head.k, c.head.reader(), t, pool, layout);
        const std::string what =
            fmt::format("{} {} {}", c.name, name_of(layout), kernels::to_string(isa));
        ASSERT_TRUE(s.usable());
        // Q8_0 blocks (34 bytes per 32) of every row, for groups in groups of 16 rows with
        // the last one padded, and two floats per row.
        const int64_t rows =
            layout == ScreenLayout::rows ? c.head.rows : (c.head.rows + 15) / 16 * 16;
        EXPECT_EQ(s.bytes(), static_cast<uint64_t>(rows * (c.head.k / 32 * 34) + c.head.rows * 8))
            << what;
        const Bounds b = bound(s, c.x16, t, pool);
        const std::vector<float> e = exact_logits(c.head, c.x16, t);
        for (int64_t r = 0; r < c.head.rows; ++r) {
          const auto i = static_cast<size_t>(r);
          EXPECT_LE(b.lower[i], e[i]) << what << " row " << r;
          EXPECT_GE(b.upper[i], e[i]) << what << " row " << r;
        }
        // The screen is integer sums scaled in one defined order: the same floats everywhere.
        if (first_lower.empty()) {
          first_lower = b.lower;
          first_upper = b.upper;
        }
        EXPECT_EQ(b.lower, first_lower) << what;
        EXPECT_EQ(b.upper, first_upper) << what;
      }
    }
}

// Rows whose weight rounding error points along x everywhere: Cauchy–Schwarz is then an
// equality, so the exact logit sits at (almost) the edge of its interval.
// x_i = ±127·2^-7 is exact in Q8_0 (scale 2^-7, q = ±127), so the activation term is zero.
// In each block of a row, one weight 127·2^-7 fixes the scale at 2^-7 and the other 31 are
// ±(q + 0.4375)·2^-7, which round to ±q with error ±0.4375·2^-7 of x_i's sign (or against
// it, for the "low" rows).
struct Crafted {
  Head head;
  std::vector<uint16_t> x16;
};

Crafted crafted(int64_t rows, int64_t k, std::mt19937& rng) {
  std::vector<float> x(static_cast<size_t>(k));
  std::bernoulli_distribution coin;
  for (float& v : x)
    v = (coin(rng) ? 1.0f : -1.0f) * 127.0f / 128.0f;
  std::uniform_int_distribution<int> q(0, 60);
  std::vector<float> w(static_cast<size_t>(rows * k));
  for (int64_t r = 0; r < rows; ++r) {
    const float along = r % 2 == 0 ? 1.0f : -1.0f; // even rows: error along x; odd: against
    for (int64_t i = 0; i < k; ++i) {
      const float s = x[static_cast<size_t>(i)] > 0 ? 1.0f : -1.0f;
      w[static_cast<size_t>(r * k + i)] =
          i % 32 == 0
              ? 127.0f / 128.0f
              : s * (static_cast<float>(q(rng)) + along * 0.4375f + (along < 0 ? 1 : 0)) / 128.0f;
    }
  }
  return {make_head(rows, k, w), to_half(x)};
}

TEST(HeadScreen, CraftedRowsReachTheBound) {
  kernels::ThreadPool pool(1);
  std::mt19937 rng(7);
  for (int64_t k : {64, 2560}) {
    const Crafted c = crafted(16, k, rng);
    for (Isa isa : kernels::available_isas())
      for (ScreenLayout layout : kLayouts) {
        const Table& t = kernels::table_for(isa);
        const HeadScreen s(c.head.rows, c.head.k, c.head.reader(), t, pool, layout);
        const Bounds b = bound(s, c.x16, t, pool);
        const std::vector<float> e = exact_logits(c.head, c.x16, t);
        for (int64_t r = 0; r < c.head.rows; ++r) {
          const auto i = static_cast<size_t>(r);
          ASSERT_LE(b.lower[i], e[i]) << "k=" << k << " row " << r;
          ASSERT_GE(b.upper[i], e[i]) << "k=" << k << " row " << r;
          // The approximate logit is the interval's midpoint (up to rounding): the exact one
          // is at least 90 % of the half-width away from it, on the crafted side, so a bound
          // 10 % smaller would fail here.
          const double mid = (static_cast<double>(b.lower[i]) + b.upper[i]) / 2;
          const double half = (static_cast<double>(b.upper[i]) - b.lower[i]) / 2;
          const double off = (static_cast<double>(e[i]) - mid) * (r % 2 == 0 ? 1 : -1);
          EXPECT_GT(off, 0.9 * half) << "k=" << k << " row " << r << " " << kernels::to_string(isa)
                                     << " " << name_of(layout);
        }
      }
  }
}

// A decoy with the better approximate logit but the lower exact one: the underdog (the
// true top 1) must be a candidate. With x and the block scales of `crafted`, in units of
// |x_i|·2^-7: the underdog's weights are q + 0.4375 (rounded down to q); the decoy copies
// them except 24 weights at q + 0.5625 (rounded up to q + 1: approximate +24, exact +3) and
// 6 at q − 0.4375 (rounded to q: approximate 0, exact −5.25).
TEST(HeadScreen, UnderdogWithALowerApproximateLogitIsACandidate) {
  kernels::ThreadPool pool(1);
  std::mt19937 rng(8);
  const int64_t k = 64;
  Crafted c = crafted(2, k, rng);
  for (int64_t i = 0; i < k; ++i) {
    if (i % 32 == 0) continue;
    const float s = fp16_to_fp32(c.x16[static_cast<size_t>(i)]) > 0 ? 1.0f : -1.0f;
    const float q = std::floor(std::fabs(fp16_to_fp32(c.head.w[static_cast<size_t>(i)])) * 128.0f);
    const float under = q + 0.4375f;
    const float decoy = i < 25 ? q + 0.5625f : (i < 31 ? q - 0.4375f : under);
    c.head.w[static_cast<size_t>(i)] = fp32_to_fp16(s * under / 128.0f);
    c.head.w[static_cast<size_t>(k + i)] = fp32_to_fp16(s * decoy / 128.0f);
  }
  for (Isa isa : kernels::available_isas())
    for (ScreenLayout layout : kLayouts) {
      const Table& t = kernels::table_for(isa);
      const HeadScreen s(c.head.rows, k, c.head.reader(), t, pool, layout);
      const Bounds b = bound(s, c.x16, t, pool);
      const std::vector<float> e = exact_logits(c.head, c.x16, t);
      ASSERT_GT(e[0], e[1]);                                       // the underdog wins exactly,
      ASSERT_GT(b.lower[1] + b.upper[1], b.lower[0] + b.upper[0]); // the decoy approximately
      std::vector<int32_t> cands;
      select_candidates(b.lower, b.upper, 1, cands);
      EXPECT_EQ(cands, (std::vector<int32_t>{0, 1}))
          << kernels::to_string(isa) << " " << name_of(layout);
    }
}

// Ties and near-ties: identical rows share one exact logit; rows one half-ulp apart in a
// single weight differ by less than any bound. Every tied row must be a candidate.
TEST(HeadScreen, TiedAndNearlyTiedRowsAreAllCandidates) {
  kernels::ThreadPool pool(2);
  std::mt19937 rng(9);
  const int64_t k = 256, rows = 400;
  auto w = gaussian(rng, rows * k, 0.02f);
  const auto x = gaussian(rng, k, 1.0f);
  // Row 3 the clear winner (weights along x); rows 10..59 copy it (exact ties), rows 60..109
  // copy it with one weight nudged by one f16 ulp (near-ties).
  for (int64_t i = 0; i < k; ++i)
    w[static_cast<size_t>(3 * k + i)] = x[static_cast<size_t>(i)] > 0 ? 0.05f : -0.05f;
  for (int64_t r = 10; r < 110; ++r)
    std::copy_n(w.begin() + 3 * k, k, w.begin() + r * k);
  Head h = make_head(rows, k, w);
  for (int64_t r = 60; r < 110; ++r)
    h.w[static_cast<size_t>(r * k + r % k)] += (r % 2 ? 1 : -1);
  const auto x16 = to_half(x);
  const Table& t = kernels::table();
  const std::vector<float> e = exact_logits(h, x16, t);
  for (ScreenLayout layout : kLayouts) {
    const HeadScreen s(rows, k, h.reader(), t, pool, layout);
    const Bounds b = bound(s, x16, t, pool);
    for (int64_t m : {1, 2, 5, 40, 60}) {
      std::vector<int32_t> cands;
      select_candidates(b.lower, b.upper, m, cands);
      for (int32_t id : true_top(e, m))
        EXPECT_TRUE(std::binary_search(cands.begin(), cands.end(), id))
            << name_of(layout) << " m=" << m << " id " << id;
    }
  }
}

// 10^5 random heads and operands of varied shapes, scales and tie structure; the true top m
// (ties included) must always be inside the candidate set.
TEST(HeadScreen, RandomTrialsNeverMissTheTrueTopM) {
  kernels::ThreadPool pool(1);
  const Table& t = kernels::table();
  std::mt19937 rng(2024);
  // Random slices of one pool of normals, scaled (drawing fresh normals would dominate).
  const std::vector<float> normals = gaussian(rng, 1 << 20, 1.0f);
  const auto draw = [&](int64_t n, float scale) {
    const size_t at = rng() % (normals.size() - static_cast<size_t>(n));
    std::vector<float> v(normals.begin() + static_cast<ptrdiff_t>(at),
                         normals.begin() + static_cast<ptrdiff_t>(at) + n);
    for (float& x : v)
      x *= scale;
    return v;
  };
  constexpr int kTrials = 100000;
  int64_t misses = 0, screened_rows = 0, total_rows = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    const int64_t k = int64_t{32} << (trial % 3);
    const int64_t rows = 8 + static_cast<int64_t>(rng() % 120);
    const float ws = std::ldexp(1.0f, static_cast<int>(rng() % 12) - 10);
    auto w = draw(rows * k, ws);
    auto x = draw(k, 1.0f);
    switch (trial % 4) {
    case 1: // outlier features
      x[rng() % static_cast<size_t>(k)] *= 200.0f;
      break;
    case 2: // duplicated rows (exact ties)
      for (int64_t r = 1; r < rows; r += 3)
        std::copy_n(w.begin(), k, w.begin() + r * k);
      break;
    case 3: // values on a coarse grid: many near-ties
      for (float& v : w)
        v = std::round(v / ws * 2.0f) * ws / 2.0f;
      break;
    default:
      break;
    }
    const Head h = make_head(rows, k, w);
    const auto x16 = to_half(x);
    // Both layouts, in alternate trials.
    const HeadScreen s(rows, k, h.reader(), t, pool, kLayouts[(trial / 4) % 2]);
    Bounds b{std::vector<float>(static_cast<size_t>(rows)),
             std::vector<float>(static_cast<size_t>(rows))};
    ASSERT_TRUE(s.bound(x16.data(), b.lower, b.upper, t, pool));
    const std::vector<float> e = exact_logits(h, x16, t);
    const int64_t m =
        1 + static_cast<int64_t>(rng() % static_cast<uint32_t>(std::min<int64_t>(rows, 40)));
    std::vector<int32_t> cands;
    select_candidates(b.lower, b.upper, m, cands);
    for (int32_t id : true_top(e, m))
      if (!std::binary_search(cands.begin(), cands.end(), id)) ++misses;
    screened_rows += static_cast<int64_t>(cands.size());
    total_rows += rows;
  }
  EXPECT_EQ(misses, 0);
  // The screen does prune: far fewer candidates than rows overall.
  EXPECT_LT(screened_rows, total_rows / 2) << screened_rows << " of " << total_rows;
}

TEST(HeadScreen, ScreenedTopHasTheFullHeadsLogitsAndFallsBack) {
  kernels::ThreadPool pool(2);
  std::mt19937 rng(5);
  const int64_t k = 256, rows = 4096;
  const Head h = make_head(rows, k, gaussian(rng, rows * k, 0.02f));
  const auto x16 = to_half(gaussian(rng, k, 1.0f));
  const Table& t = kernels::table();
  const std::vector<float> full = exact_logits(h, x16, t);
  const HeadScreen s(rows, k, h.reader(), t, pool);
  HeadScratch scratch;
  HeadTop top;
  const auto expect_exact = [&](const HeadTop& got, const char* what) {
    ASSERT_EQ(got.ids.size(), got.logits.size()) << what;
    for (size_t i = 0; i < got.ids.size(); ++i)
      EXPECT_EQ(std::bit_cast<uint32_t>(got.logits[i]),
                std::bit_cast<uint32_t>(full[static_cast<size_t>(got.ids[i])]))
          << what << " id " << got.ids[i];
  };
  for (int64_t m : {1, 5, 40}) {
    screened_top(s, x16.data(), m, {}, h.reader(), t, pool, scratch, top);
    EXPECT_FALSE(top.full) << m;
    EXPECT_LT(static_cast<int64_t>(top.ids.size()), rows / kFallbackDivisor) << m;
    EXPECT_TRUE(std::is_sorted(top.ids.begin(), top.ids.end()));
    for (int32_t id : true_top(full, m))
      EXPECT_TRUE(std::binary_search(top.ids.begin(), top.ids.end(), id)) << m << " " << id;
    expect_exact(top, "screened");
  }
  // m above the threshold: the whole head, exactly.
  screened_top(s, x16.data(), rows / kFallbackDivisor + 1, {}, h.reader(), t, pool, scratch, top);
  EXPECT_TRUE(top.full);
  ASSERT_EQ(top.ids.size(), static_cast<size_t>(rows));
  expect_exact(top, "fallback (m)");
  // Too many candidates (an adjustment that widens every interval): the whole head.
  const BoundsAdjust widen = [](std::span<float> lower, std::span<float> upper) {
    std::fill(lower.begin(), lower.end(), -1e30f);
    std::fill(upper.begin(), upper.end(), 1e30f);
  };
  screened_top(s, x16.data(), 1, widen, h.reader(), t, pool, scratch, top);
  EXPECT_TRUE(top.full);
  ASSERT_EQ(top.ids.size(), static_cast<size_t>(rows));
  expect_exact(top, "fallback (candidates)");
  // A non-finite operand has no bound: the whole head.
  auto bad = x16;
  bad[7] = 0x7C00; // +inf
  const std::vector<float> full_bad = exact_logits(h, bad, t);
  screened_top(s, bad.data(), 1, {}, h.reader(), t, pool, scratch, top);
  EXPECT_TRUE(top.full);
  ASSERT_EQ(top.logits.size(), full_bad.size());
  for (size_t i = 0; i < full_bad.size(); ++i)
    EXPECT_EQ(std::bit_cast<uint32_t>(top.logits[i]), std::bit_cast<uint32_t>(full_bad[i]));
}

// Several inputs in one step (a batched decode): each query gets its own candidates with the
// full head's logits of its own operand, whatever the others ask, and a row wanted by several
// queries is read once.
TEST(HeadScreen, ScreenedTopsShareRowsAndKeepEachQuerysLogits) {
  kernels::ThreadPool pool(2);
  std::mt19937 rng(7);
  const int64_t k = 256, rows = 4096;
  const Head h = make_head(rows, k, gaussian(rng, rows * k, 0.02f));
  const Table& t = kernels::table();
  const HeadScreen s(rows, k, h.reader(), t, pool, ScreenLayout::groups); // serve's
  const auto xa = to_half(gaussian(rng, k, 1.0f));
  const auto xb = to_half(gaussian(rng, k, 1.0f));
  // Operands per query: a twice (the same candidates), b, a with a small m, and b with an m
  // above the fallback threshold (every row).
  const std::vector<const std::vector<uint16_t>*> operands = {&xa, &xa, &xb, &xa, &xb};
  const std::vector<int64_t> ms = {5, 5, 3, 1, rows / kFallbackDivisor + 1};
  std::vector<uint16_t> x16;
  for (const auto* x : operands)
    x16.insert(x16.end(), x->begin(), x->end());
  std::vector<HeadTop> tops(operands.size());
  std::vector<HeadQuery> queries;
  for (size_t i = 0; i < operands.size(); ++i)
    queries.push_back({ms[i], nullptr, &tops[i]});
  std::atomic<int64_t> read_rows{0};
  const HeadRowReader counting = [&](int64_t first, int64_t count, uint16_t* dst) {
    read_rows += count;
    h.reader()(first, count, dst);
  };
  HeadScratch scratch;
  screened_tops(s, x16.data(), queries, counting, t, pool, scratch);
  // The last query takes every row, so every row is read, once.
  EXPECT_EQ(read_rows.load(), rows);
  for (size_t i = 0; i < operands.size(); ++i) {
    const std::vector<float> full = exact_logits(h, *operands[i], t);
    const HeadTop& top = tops[i];
    EXPECT_EQ(top.full, i == 4) << i;
    ASSERT_EQ(top.ids.size(), top.logits.size()) << i;
    EXPECT_TRUE(std::is_sorted(top.ids.begin(), top.ids.end())) << i;
    for (int32_t id : true_top(full, ms[i]))
      EXPECT_TRUE(std::binary_search(top.ids.begin(), top.ids.end(), id)) << i << " " << id;
    for (size_t j = 0; j < top.ids.size(); ++j)
      EXPECT_EQ(std::bit_cast<uint32_t>(top.logits[j]),
                std::bit_cast<uint32_t>(full[static_cast<size_t>(top.ids[j])]))
          << "query " << i << " id " << top.ids[j];
  }
  EXPECT_EQ(tops[0].ids, tops[1].ids);
  // Without the full query: the rows read are the union of the candidates, each once.
  queries.pop_back();
  read_rows = 0;
  screened_tops(s, x16.data(), queries, counting, t, pool, scratch);
  std::set<int32_t> wanted;
  for (const HeadQuery& q : queries)
    wanted.insert(q.out->ids.begin(), q.out->ids.end());
  EXPECT_EQ(read_rows.load(), static_cast<int64_t>(wanted.size()));
  EXPECT_LT(read_rows.load(), static_cast<int64_t>(tops[0].ids.size() + tops[1].ids.size() +
                                                   tops[2].ids.size() + tops[3].ids.size()));
}

TEST(HeadScreen, NonFiniteWeightMakesTheScreenUnusable) {
  kernels::ThreadPool pool(1);
  std::mt19937 rng(6);
  Head h = make_head(64, 64, gaussian(rng, 64 * 64, 0.02f));
  h.w[100] = 0x7E00; // NaN
  const HeadScreen s(h.rows, h.k, h.reader(), kernels::table(), pool);
  EXPECT_FALSE(s.usable());
  HeadScratch scratch;
  HeadTop top;
  const auto x16 = to_half(gaussian(rng, 64, 1.0f));
  screened_top(s, x16.data(), 1, {}, h.reader(), kernels::table(), pool, scratch, top);
  EXPECT_TRUE(top.full);
}

} // namespace
} // namespace bitnet::model
