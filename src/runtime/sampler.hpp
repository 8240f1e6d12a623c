// Token sampling in llama.cpp's chain order: repetition penalty → top-k → top-p → min-p →
// temperature → draw (greedy when temp <= 0). Seeded runs are reproducible.
#pragma once

#include <cstdint>
#include <random>
#include <span>

#include "bitnet/sampling.hpp"

namespace bitnet::runtime {

class Sampler {
public:
  explicit Sampler(const SamplerParams& params);
  // `logits` may be modified (penalties); `history` is every token so far (prompt included).
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);

private:
  SamplerParams params_;
  std::mt19937_64 rng_;
};

} // namespace bitnet::runtime
