// Token sampling in llama.cpp's chain order: logit bias → penalties (repetition, frequency,
// presence) → top-k → top-p → min-p → temperature → draw (greedy when temp <= 0). Seeded runs
// are reproducible.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <unordered_map>

#include "bitnet/sampling.hpp"
#include "bitnet/session.hpp"

namespace bitnet::runtime {

// The order of the chain's candidates and of Session::top_logits: descending logit, equal
// logits by ascending id (results never depend on sort internals), NaN after every number
// (so the order stays a strict weak one even then).
bool ranks_before(const TokenLogit& a, const TokenLogit& b);

class Sampler {
public:
  explicit Sampler(const SamplerParams& params);
  // `logits` may be modified (penalties); `history` is every token so far (prompt included).
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);
  // The same on a subset of the vocabulary: `ids` ascending with their `logits`, holding
  // every id that can be among the top_needed() largest after the penalty (a screened head
  // step), so the result equals sample() on all logits.
  int32_t sample(std::span<const int32_t> ids, std::span<float> logits,
                 std::span<const int32_t> history);

  // How many of the largest (penalized) logits the chain looks at: 1 when greedy, top-k when
  // it cuts below n_vocab; n_vocab when it needs every logit.
  int64_t top_needed(int64_t n_vocab) const;
  // Moves the bounds of the logits as sample() moves the logits: the logit bias and the
  // penalties are monotone (non-decreasing) in the logit, so they map an interval's ends to
  // the ends of the moved interval. Any new logit transform must be added to moved() too.
  void adjust_bounds(std::span<float> lower, std::span<float> upper,
                     std::span<const int32_t> history) const;
  // Error(invalid_argument) for a biased id past the vocabulary; validate() calls it once,
  // before any work (sample() and adjust_bounds() do not check again).
  void check_ids(size_t n_vocab) const;

private:
  std::unordered_map<int32_t, int32_t> moved_ids(std::span<const int32_t> history) const;
  float moved(int32_t id, float logit, int32_t count) const;

  SamplerParams params_;
  std::mt19937_64 rng_;
};

} // namespace bitnet::runtime
