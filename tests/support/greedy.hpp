// Greedy decoding helpers shared by the generation tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>

#include "bitnet/generate.hpp"

namespace bitnet::test {

// Argmax decoding of n_predict tokens that ignores end-of-generation tokens.
inline GenerateParams greedy(int32_t n_predict) {
  GenerateParams p;
  p.n_predict = n_predict;
  p.sampler.temp = 0.0f;
  p.ignore_eos = true;
  return p;
}

// The first index of the largest value (the lowest id on ties, as the greedy sampler).
inline int32_t argmax(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

} // namespace bitnet::test
