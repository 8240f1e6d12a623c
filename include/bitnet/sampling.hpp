// Sampling parameters, with llama.cpp's defaults. temp <= 0 is greedy (argmax).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace bitnet {

struct SamplerParams {
  float temp = 0.8f;
  int32_t top_k = 40;          // <= 0: off
  float top_p = 0.95f;         // >= 1: off
  float min_p = 0.05f;         // <= 0: off
  float repeat_penalty = 1.0f; // 1: off
  int32_t repeat_last_n = 64;  // tokens of history the penalties look at (-1: all)
  // OpenAI's / llama.cpp's: a token seen c > 0 times in the window loses
  // presence_penalty + c * frequency_penalty from its logit (after the repetition penalty).
  float presence_penalty = 0.0f;  // 0: off
  float frequency_penalty = 0.0f; // 0: off
  // Added to the listed tokens' logits before the penalties (-INFINITY bans a token).
  std::vector<std::pair<int32_t, float>> logit_bias = {};
  uint64_t seed = 0;
};

} // namespace bitnet
