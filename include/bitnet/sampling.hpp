// Sampling parameters, with llama.cpp's defaults. temp <= 0 is greedy (argmax).
#pragma once

#include <cstdint>

namespace bitnet {

struct SamplerParams {
  float temp = 0.8f;
  int32_t top_k = 40;          // <= 0: off
  float top_p = 0.95f;         // >= 1: off
  float min_p = 0.05f;         // <= 0: off
  float repeat_penalty = 1.0f; // 1: off
  int32_t repeat_last_n = 64;  // tokens of history the penalty looks at (-1: all)
  uint64_t seed = 0;
};

} // namespace bitnet
