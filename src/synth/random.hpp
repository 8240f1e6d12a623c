// Fixed, fully specified pseudo-random numbers for synthetic models: the same seed gives the
// same bytes with every compiler and standard library (std::*_distribution does not).
#pragma once

#include <cstdint>

namespace bitnet::synth {

// SplitMix64 step (Steele, Lea, Flood 2014): used to derive independent seeds.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// xoshiro256** 1.0 (Blackman, Vigna), seeded through SplitMix64.
class Rng {
public:
  // One stream per (seed, stream) pair, so each tensor's values do not depend on the others.
  Rng(uint64_t seed, uint64_t stream) {
    uint64_t sm = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (auto& word : s_)
      word = splitmix64(sm);
  }

  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [-1, 1): the top 24 bits, so the float is exact.
  float uniform_pm1() {
    return static_cast<float>(static_cast<int32_t>(next() >> 40) - (1 << 23)) * (1.0f / (1 << 23));
  }

  // Four values in {-1, 0, +1}, each equally likely (bias below 2^-16), from one draw.
  void ternary4(int8_t out[4]) {
    const uint64_t r = next();
    for (int i = 0; i < 4; ++i) {
      const uint32_t chunk = static_cast<uint32_t>(r >> (16 * i)) & 0xFFFFu;
      out[i] = static_cast<int8_t>(static_cast<int32_t>((chunk * 3u) >> 16) - 1);
    }
  }

private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

} // namespace bitnet::synth
