// llama.cpp's default sampler chain, on one candidate list that shrinks step by step.
#include "runtime/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "bitnet/error.hpp"

namespace bitnet::runtime {

bool ranks_before(const TokenLogit& a, const TokenLogit& b) {
  const bool a_nan = std::isnan(a.logit), b_nan = std::isnan(b.logit);
  if (a_nan != b_nan) return b_nan;
  if (!a_nan && a.logit != b.logit) return a.logit > b.logit;
  return a.id < b.id;
}

// The window's token counts and the biased ids, each listed once: the ids whose logits the
// chain's first step moves.
std::unordered_map<int32_t, int32_t> Sampler::moved_ids(std::span<const int32_t> history) const {
  std::unordered_map<int32_t, int32_t> counts;
  const bool penalties = params_.repeat_penalty != 1.0f || params_.presence_penalty != 0.0f ||
                         params_.frequency_penalty != 0.0f;
  if (penalties && params_.repeat_last_n != 0) {
    const size_t window =
        params_.repeat_last_n < 0
            ? history.size()
            : std::min(history.size(), static_cast<size_t>(params_.repeat_last_n));
    for (int32_t id : history.subspan(history.size() - window))
      ++counts[id];
  }
  for (const auto& [id, bias] : params_.logit_bias)
    counts.try_emplace(id, 0);
  return counts;
}

// One logit through llama.cpp's logit bias and penalties (llama_sample_repetition_penalties):
// bias added; then divided by the repetition penalty when positive, multiplied when not;
// then minus count·frequency + presence. Each step is non-decreasing in l (float rounding is
// monotone), so the whole map is, which adjust_bounds relies on.
float Sampler::moved(int32_t id, float l, int32_t count) const {
  for (const auto& [bias_id, bias] : params_.logit_bias)
    if (bias_id == id) l += bias;
  if (count == 0) return l;
  l = l > 0.0f ? l / params_.repeat_penalty : l * params_.repeat_penalty;
  return l - (static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty);
}

namespace {

// Probabilities of the (sorted) candidates, softmax over `scale * logit`.
std::vector<double> softmax(const std::vector<TokenLogit>& cands, double scale) {
  std::vector<double> p(cands.size());
  const double max = cands.front().logit;
  double sum = 0.0;
  for (size_t i = 0; i < cands.size(); ++i) {
    p[i] = std::exp((cands[i].logit - max) * scale);
    sum += p[i];
  }
  for (double& v : p)
    v /= sum;
  return p;
}

} // namespace

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {
  if (!(params.repeat_penalty > 0.0f) || !std::isfinite(params.repeat_penalty)) {
    throw Error(ErrorKind::invalid_argument, "repeat penalty must be a finite value > 0");
  }
  if (std::isnan(params.temp) || std::isnan(params.top_p) || std::isnan(params.min_p)) {
    throw Error(ErrorKind::invalid_argument, "sampling parameters must not be NaN");
  }
  if (!std::isfinite(params.presence_penalty) || !std::isfinite(params.frequency_penalty)) {
    throw Error(ErrorKind::invalid_argument, "presence and frequency penalties must be finite");
  }
  for (const auto& [id, bias] : params.logit_bias) {
    if (id < 0 || std::isnan(bias) || bias == INFINITY) {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("logit bias {} for token {}: needs a token id >= 0 and a finite "
                              "bias or -inf (a large finite bias forces the token)",
                              bias, id));
    }
  }
}

void Sampler::check_ids(size_t n_vocab) const {
  for (const auto& [id, bias] : params_.logit_bias) {
    if (static_cast<size_t>(id) >= n_vocab) {
      throw Error(
          ErrorKind::invalid_argument,
          fmt::format("logit bias for token {}: outside the vocabulary of {} tokens", id, n_vocab));
    }
  }
}

int64_t Sampler::top_needed(int64_t n_vocab) const {
  if (params_.temp <= 0.0f) return 1;
  return params_.top_k > 0 && params_.top_k < n_vocab ? params_.top_k : n_vocab;
}

void Sampler::adjust_bounds(std::span<float> lower, std::span<float> upper,
                            std::span<const int32_t> history) const {
  for (const auto& [id, count] : moved_ids(history)) {
    if (id < 0 || static_cast<size_t>(id) >= lower.size()) continue; // a prompt id past the vocab
    const auto i = static_cast<size_t>(id);
    lower[i] = moved(id, lower[i], count);
    upper[i] = moved(id, upper[i], count);
  }
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i)
    ids[i] = static_cast<int32_t>(i);
  return sample(ids, logits, history);
}

int32_t Sampler::sample(std::span<const int32_t> ids, std::span<float> logits,
                        std::span<const int32_t> history) {
  if (logits.empty() || ids.size() != logits.size())
    throw Error(ErrorKind::invalid_argument, "sampler: empty or mismatched logits");
  for (const auto& [id, count] : moved_ids(history)) {
    const auto it = std::lower_bound(ids.begin(), ids.end(), id);
    if (it != ids.end() && *it == id) {
      float& l = logits[static_cast<size_t>(it - ids.begin())];
      l = moved(id, l, count);
    }
  }

  // Greedy: the filters below never remove the arg-max, so they cannot change the result.
  // The first maximum has the lowest id (ids ascend).
  if (params_.temp <= 0.0f)
    return ids[static_cast<size_t>(std::max_element(logits.begin(), logits.end()) -
                                   logits.begin())];

  std::vector<TokenLogit> cands(logits.size());
  for (size_t i = 0; i < logits.size(); ++i)
    cands[i] = {ids[i], logits[i]};

  // top-k: keep the k largest.
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < cands.size()) {
    const auto k = static_cast<ptrdiff_t>(params_.top_k);
    std::partial_sort(cands.begin(), cands.begin() + k, cands.end(), ranks_before);
    cands.resize(static_cast<size_t>(k));
  } else {
    std::sort(cands.begin(), cands.end(), ranks_before);
  }

  // top-p: the smallest prefix whose probability mass reaches p (at least one token).
  if (params_.top_p < 1.0f) {
    const std::vector<double> p = softmax(cands, 1.0);
    double cum = 0.0;
    size_t keep = cands.size();
    for (size_t i = 0; i < p.size(); ++i) {
      cum += p[i];
      if (cum >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
    cands.resize(keep);
  }

  // min-p: drop tokens whose probability is below min_p times the largest one, which is
  // logit < max_logit + log(min_p).
  if (params_.min_p > 0.0f) {
    const double threshold = cands.front().logit + std::log(static_cast<double>(params_.min_p));
    size_t keep = 1;
    while (keep < cands.size() && cands[keep].logit >= threshold)
      ++keep;
    cands.resize(keep);
  }

  // Temperature, then one draw from the softmax with a portable 53-bit uniform.
  const std::vector<double> p = softmax(cands, 1.0 / static_cast<double>(params_.temp));
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  double cum = 0.0;
  for (size_t i = 0; i < p.size(); ++i) {
    cum += p[i];
    if (u < cum) return cands[i].id;
  }
  return cands.back().id;
}

} // namespace bitnet::runtime
