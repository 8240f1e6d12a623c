// Sampler on crafted logits: each stage of llama.cpp's chain checked on its own, plus seeding.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "bitnet/error.hpp"
#include "runtime/sampler.hpp"

namespace {

using bitnet::SamplerParams;
using bitnet::runtime::Sampler;

// Every filter off; temperature 1: a plain draw from softmax(logits).
SamplerParams plain(uint64_t seed = 1) {
  SamplerParams p;
  p.temp = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.seed = seed;
  return p;
}

std::vector<float> log_probs(std::initializer_list<double> probs) {
  std::vector<float> l;
  for (double p : probs)
    l.push_back(static_cast<float>(std::log(p)));
  return l;
}

// Counts of each token over n draws from one sampler (fresh logits each time).
std::map<int32_t, int> histogram(const SamplerParams& params, const std::vector<float>& logits,
                                 int n) {
  Sampler s(params);
  std::map<int32_t, int> counts;
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = logits;
    ++counts[s.sample(l, {})];
  }
  return counts;
}

std::set<int32_t> support(const std::map<int32_t, int>& counts) {
  std::set<int32_t> ids;
  for (const auto& [id, n] : counts)
    ids.insert(id);
  return ids;
}

TEST(Sampler, GreedyPicksArgmaxAndLowestIdOnTies) {
  SamplerParams p = plain();
  p.temp = 0.0f;
  Sampler s(p);
  std::vector<float> l = {0.1f, 3.0f, -1.0f, 2.9f};
  EXPECT_EQ(s.sample(l, {}), 1);
  std::vector<float> tie = {1.0f, 5.0f, 5.0f, 0.0f};
  EXPECT_EQ(s.sample(tie, {}), 1);
}

TEST(Sampler, GreedyIgnoresSeedAndFilters) {
  std::vector<float> logits = {0.5f, 0.2f, 4.0f, 3.9f};
  for (uint64_t seed : {1u, 2u, 99u}) {
    SamplerParams p; // defaults: top-k 40, top-p 0.95, min-p 0.05
    p.temp = 0.0f;
    p.seed = seed;
    Sampler s(p);
    std::vector<float> l = logits;
    EXPECT_EQ(s.sample(l, {}), 2);
  }
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplerParams p = plain();
  p.temp = 0.0f;
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  std::vector<float> l = {4.0f, -1.0f, 3.0f, 0.5f};
  const std::vector<int32_t> history = {0, 1, 0}; // token 0 twice: penalised once
  EXPECT_EQ(s.sample(l, history), 2);             // 4/2 = 2 < 3
  EXPECT_FLOAT_EQ(l[0], 2.0f);
  EXPECT_FLOAT_EQ(l[1], -2.0f);
  EXPECT_FLOAT_EQ(l[2], 3.0f);
  EXPECT_FLOAT_EQ(l[3], 0.5f);
}

TEST(Sampler, RepeatPenaltyOnlyLooksAtTheLastNTokens) {
  SamplerParams p = plain();
  p.temp = 0.0f;
  p.repeat_penalty = 4.0f;
  p.repeat_last_n = 2;
  Sampler s(p);
  std::vector<float> l = {4.0f, 3.0f, 2.0f, 1.0f};
  const std::vector<int32_t> history = {0, 1, 2};
  EXPECT_EQ(s.sample(l, history), 0); // token 0 is outside the window
  EXPECT_FLOAT_EQ(l[0], 4.0f);
  EXPECT_FLOAT_EQ(l[1], 0.75f);
  EXPECT_FLOAT_EQ(l[2], 0.5f);

  p.repeat_last_n = 0; // off
  Sampler off(p);
  std::vector<float> l2 = {4.0f, 3.0f};
  const std::vector<int32_t> h2 = {0};
  EXPECT_EQ(off.sample(l2, h2), 0);
  EXPECT_FLOAT_EQ(l2[0], 4.0f);

  p.repeat_last_n = -1; // whole history
  Sampler all(p);
  std::vector<float> l3 = {4.0f, 3.0f, 2.0f};
  const std::vector<int32_t> h3 = {0, 2, 2, 2, 2};
  EXPECT_EQ(all.sample(l3, h3), 1);
  EXPECT_FLOAT_EQ(l3[0], 1.0f);
}

TEST(Sampler, TopKKeepsTheKLargest) {
  SamplerParams p = plain();
  p.top_k = 2;
  const auto logits = log_probs({0.1, 0.4, 0.2, 0.3});
  const auto counts = histogram(p, logits, 2000);
  EXPECT_EQ(support(counts), (std::set<int32_t>{1, 3}));
  // Renormalised over the two kept tokens: 0.4/0.7.
  EXPECT_NEAR(counts.at(1) / 2000.0, 0.4 / 0.7, 0.04);

  p.top_k = 1;
  EXPECT_EQ(support(histogram(p, logits, 200)), (std::set<int32_t>{1}));
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  SamplerParams p = plain();
  const auto logits = log_probs({0.15, 0.5, 0.05, 0.3});
  p.top_p = 0.75f; // 0.5 + 0.3 ≥ 0.75
  EXPECT_EQ(support(histogram(p, logits, 2000)), (std::set<int32_t>{1, 3}));
  p.top_p = 0.85f; // needs 0.15 too
  EXPECT_EQ(support(histogram(p, logits, 2000)), (std::set<int32_t>{0, 1, 3}));
  p.top_p = 0.01f; // at least one token is kept
  EXPECT_EQ(support(histogram(p, logits, 200)), (std::set<int32_t>{1}));
}

TEST(Sampler, MinPDropsTokensBelowMinPTimesTheMax) {
  SamplerParams p = plain();
  const auto logits = log_probs({0.15, 0.5, 0.05, 0.3});
  p.min_p = 0.2f; // threshold 0.1: drops only 0.05
  EXPECT_EQ(support(histogram(p, logits, 2000)), (std::set<int32_t>{0, 1, 3}));
  p.min_p = 0.5f; // threshold 0.25
  EXPECT_EQ(support(histogram(p, logits, 2000)), (std::set<int32_t>{1, 3}));
}

TEST(Sampler, DrawFollowsSoftmaxAndTemperatureSharpensIt) {
  const std::vector<float> logits = {1.0f, 0.0f};
  const int n = 20000;
  SamplerParams p = plain(7);
  const double p1 = std::exp(1.0) / (std::exp(1.0) + 1.0);
  EXPECT_NEAR(histogram(p, logits, n)[0] / double(n), p1, 0.015);
  p.temp = 0.5f; // logits / 0.5 = {2, 0}
  const double p05 = std::exp(2.0) / (std::exp(2.0) + 1.0);
  EXPECT_NEAR(histogram(p, logits, n)[0] / double(n), p05, 0.015);
  p.temp = 2.0f; // {0.5, 0}
  const double p2 = std::exp(0.5) / (std::exp(0.5) + 1.0);
  EXPECT_NEAR(histogram(p, logits, n)[0] / double(n), p2, 0.015);
}

TEST(Sampler, FiltersApplyBeforeTemperature) {
  // min-p is judged on the untempered distribution: with min_p 0.2 token 2 (p = 0.05/0.5 of
  // the max) is dropped even though a high temperature would flatten it above the threshold.
  SamplerParams p = plain();
  p.min_p = 0.2f;
  p.temp = 100.0f;
  const auto logits = log_probs({0.5, 0.45, 0.05});
  EXPECT_EQ(support(histogram(p, logits, 2000)), (std::set<int32_t>{0, 1}));
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDifferentSequence) {
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i)
    logits[i] = static_cast<float>(i % 7) * 0.3f;
  auto run = [&](uint64_t seed) {
    SamplerParams p = plain(seed);
    Sampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) {
      std::vector<float> l = logits;
      out.push_back(s.sample(l, out));
    }
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(Sampler, TopNeededIsWhatTheChainLooksAt) {
  SamplerParams p; // the default chain: top-k 40
  EXPECT_EQ(Sampler(p).top_needed(1000), 40);
  EXPECT_EQ(Sampler(p).top_needed(40), 40); // k = n_vocab: every logit
  p.top_k = 0;                              // off: the whole distribution
  EXPECT_EQ(Sampler(p).top_needed(1000), 1000);
  p.top_k = 5000;
  EXPECT_EQ(Sampler(p).top_needed(1000), 1000);
  p.temp = 0.0f; // greedy: the argmax only
  EXPECT_EQ(Sampler(p).top_needed(1000), 1);
}

// adjust_bounds moves an interval's ends as sample() moves a logit inside it: for every id
// in the penalty's window (and only those) the penalized logit stays within the adjusted
// bounds, whatever its sign.
TEST(Sampler, AdjustedBoundsHoldThePenalizedLogits) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f);
  SamplerParams p = plain();
  p.temp = 0.0f;
  p.repeat_last_n = 6;
  for (float penalty : {0.5f, 1.0f, 1.3f, 3.0f}) {
    p.repeat_penalty = penalty;
    // With the repetition penalty off, the presence/frequency penalties and a bias move them.
    p.presence_penalty = penalty == 1.0f ? 0.7f : 0.0f;
    p.frequency_penalty = penalty == 1.0f ? -0.4f : 0.0f;
    p.logit_bias = {};
    if (penalty == 1.0f) p.logit_bias = {{11, 2.5f}};
    const Sampler s(p);
    for (int trial = 0; trial < 200; ++trial) {
      const size_t n = 12;
      std::vector<float> lower(n), upper(n), logits(n);
      for (size_t i = 0; i < n; ++i) {
        float a = u(rng), b = u(rng);
        if (a > b) std::swap(a, b);
        lower[i] = a;
        upper[i] = b;
        logits[i] = std::min(b, a + (b - a) * static_cast<float>(trial % 5) / 4.0f);
      }
      std::vector<int32_t> history(8);
      for (int32_t& id : history)
        id = static_cast<int32_t>(rng() % n);
      const auto before_lower = lower, before_upper = upper;
      s.adjust_bounds(lower, upper, history);
      std::vector<float> penalized = logits;
      Sampler(p).sample(penalized, history); // greedy: only applies the penalty here
      for (size_t i = 0; i < n; ++i) {
        EXPECT_LE(lower[i], penalized[i]) << penalty << " " << i;
        EXPECT_GE(upper[i], penalized[i]) << penalty << " " << i;
        const bool in_window =
            std::find(history.end() - 6, history.end(), static_cast<int32_t>(i)) != history.end() ||
            (!p.logit_bias.empty() && i == 11);
        if (!in_window) {
          EXPECT_EQ(lower[i], before_lower[i]);
          EXPECT_EQ(upper[i], before_upper[i]);
        }
      }
    }
  }
}

// Sampling from a subset that holds every id of the top k (after the penalty) draws the same
// ids, with the same seed, as sampling from every logit.
TEST(Sampler, SubsetHoldingTheTopKSamplesLikeTheFullLogits) {
  std::mt19937 rng(4);
  std::normal_distribution<float> g(0.0f, 2.0f);
  SamplerParams p; // the default chain
  p.top_k = 8;
  p.repeat_penalty = 1.5f;
  p.seed = 77;
  Sampler full(p), subset(p);
  std::vector<int32_t> history;
  for (int step = 0; step < 300; ++step) {
    std::vector<float> logits(200);
    for (float& l : logits)
      l = g(rng);
    logits[static_cast<size_t>(rng() % 200)] = logits[static_cast<size_t>(rng() % 200)]; // a tie
    // The subset: the 8 largest penalized logits and every tie of the 8th, plus random extras.
    std::vector<float> pen = logits;
    Sampler(SamplerParams{.temp = 0.0f, .repeat_penalty = p.repeat_penalty}).sample(pen, history);
    std::vector<float> sorted = pen;
    std::nth_element(sorted.begin(), sorted.begin() + 7, sorted.end(), std::greater<float>());
    std::vector<int32_t> ids;
    std::vector<float> sub;
    for (size_t i = 0; i < logits.size(); ++i)
      if (pen[i] >= sorted[7] || rng() % 10 == 0) {
        ids.push_back(static_cast<int32_t>(i));
        sub.push_back(logits[i]);
      }
    std::vector<float> all = logits;
    const int32_t a = full.sample(all, history);
    const int32_t b = subset.sample(ids, sub, history);
    ASSERT_EQ(a, b) << "step " << step;
    history.push_back(a);
  }
}

// llama.cpp's order, worked by hand: bias first, then the repetition penalty (divide a
// positive logit, multiply a negative one), then count * frequency + presence subtracted.
TEST(Sampler, BiasThenRepetitionThenFrequencyAndPresencePenalties) {
  SamplerParams p = plain();
  p.repeat_penalty = 2.0f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  p.logit_bias = {{2, 10.0f}, {0, 1.0f}};
  std::vector<float> lower = {2.0f, -1.0f, 0.5f, 3.0f, 1.0f};
  std::vector<float> upper = lower;
  const std::vector<int32_t> history = {0, 0, 1};
  Sampler(p).adjust_bounds(lower, upper, history);
  // id 0: (2 + 1) / 2 - (2 * 0.5 + 0.25) = 0.25; id 1: -1 * 2 - (0.5 + 0.25) = -2.75;
  // id 2: 0.5 + 10 (not in the history); ids 3 and 4 untouched.
  const std::vector<float> expected = {0.25f, -2.75f, 10.5f, 3.0f, 1.0f};
  EXPECT_EQ(lower, expected);
  EXPECT_EQ(upper, expected);
  p.temp = 0.0f;
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, 1.0f};
  EXPECT_EQ(Sampler(p).sample(logits, history), 2);
  p.logit_bias = {{2, -INFINITY}};
  logits = {2.0f, -1.0f, 0.5f, 3.0f, 1.0f};
  EXPECT_EQ(Sampler(p).sample(logits, history), 3);
  // A window of 1 sees only the last token (id 1): id 0 keeps its 2.0, below id 3's 3.0.
  p.repeat_last_n = 1;
  p.logit_bias = {{3, -1.5f}};
  logits = {2.0f, -1.0f, 0.5f, 3.0f, 1.0f};
  EXPECT_EQ(Sampler(p).sample(logits, history), 0);
}

TEST(Sampler, RejectsBadParameters) {
  SamplerParams p = plain();
  p.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler{p}, bitnet::Error);
  p = plain();
  p.temp = NAN;
  EXPECT_THROW(Sampler{p}, bitnet::Error);
  p = plain();
  p.presence_penalty = INFINITY;
  EXPECT_THROW(Sampler{p}, bitnet::Error);
  p = plain();
  p.frequency_penalty = NAN;
  EXPECT_THROW(Sampler{p}, bitnet::Error);
  p = plain();
  p.logit_bias = {{-1, 1.0f}};
  EXPECT_THROW(Sampler{p}, bitnet::Error);
  p.logit_bias = {{1, INFINITY}};
  EXPECT_THROW(Sampler{p}, bitnet::Error);
  p.logit_bias = {{1, NAN}};
  EXPECT_THROW(Sampler{p}, bitnet::Error);
  p.logit_bias = {{3, 1.0f}}; // past a vocabulary of 3
  EXPECT_THROW(Sampler{p}.check_ids(3), bitnet::Error);
  EXPECT_NO_THROW(Sampler{p}.check_ids(4));
  Sampler ok(plain());
  std::vector<float> empty;
  EXPECT_THROW(ok.sample(empty, {}), bitnet::Error);
}

} // namespace
