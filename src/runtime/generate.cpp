#include "bitnet/generate.hpp"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "runtime/sampler.hpp"
#include "runtime/session_impl.hpp"

namespace bitnet {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Holds back generated text that could still become a stop string, and finds the first
// complete one.
class StopMatcher {
public:
  explicit StopMatcher(const std::vector<std::string>& stops) : stops_(stops) {
    for (const std::string& s : stops_)
      if (s.empty()) throw Error(ErrorKind::invalid_argument, "stop strings must not be empty");
  }

  // Appends text; returns true when a stop string is now complete (the text before it is
  // then all that take() will release).
  bool append(std::string_view piece) {
    text_ += piece;
    for (const std::string& s : stops_) {
      const size_t from = emitted_ > s.size() ? emitted_ - s.size() : 0;
      const size_t at = text_.find(s, from);
      if (at != std::string::npos) end_ = std::min(end_, at);
    }
    return end_ != std::string::npos;
  }

  // Text safe to show now: everything up to a found stop string, else all but the longest
  // suffix that is a prefix of some stop string. `final` releases the held-back tail too.
  std::string take(bool final) {
    size_t limit = end_ != std::string::npos ? end_ : text_.size();
    if (end_ == std::string::npos && !final) limit -= held_back();
    limit = std::max(limit, emitted_);
    std::string out = text_.substr(emitted_, limit - emitted_);
    emitted_ = limit;
    return out;
  }

private:
  size_t held_back() const {
    size_t best = 0;
    for (const std::string& s : stops_)
      for (size_t n = std::min(s.size() - 1, text_.size()); n > best; --n)
        if (text_.compare(text_.size() - n, n, s, 0, n) == 0) {
          best = n;
          break;
        }
    return best;
  }

  const std::vector<std::string>& stops_;
  std::string text_;
  size_t emitted_ = 0;
  size_t end_ = std::string::npos;
};

} // namespace

const char* to_string(StopReason reason) noexcept {
  switch (reason) {
  case StopReason::eog:
    return "eog";
  case StopReason::n_predict:
    return "n_predict";
  case StopReason::stop_string:
    return "stop_string";
  case StopReason::ctx_full:
    return "ctx_full";
  case StopReason::callback:
    return "callback";
  }
  return "?";
}

namespace {

Stats run(Session& session, std::vector<int32_t> prompt_ids, const GenerateParams& params,
          const TokenCallback& on_text, Clock::time_point start, double tokenize_ms) {
  const Model& model = session.model();
  const int32_t n_ctx = session.n_ctx();
  const auto n_prompt = static_cast<int32_t>(prompt_ids.size());
  Stats st;
  st.n_prompt = n_prompt;
  st.n_past_start = session.n_past();
  st.n_threads = session.n_threads();
  st.n_ctx = n_ctx;
  st.load_ms = model.info().load_ms;
  st.tokenize_ms = tokenize_ms;

  if (params.n_predict < -1)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("n_predict {} must be >= -1", params.n_predict));
  auto& s = detail::impl_of(session);
  if (prompt_ids.empty() && !s.has_last())
    throw Error(ErrorKind::invalid_input, "empty prompt and nothing in the session to continue");
  const int64_t need =
      int64_t{session.n_past()} + n_prompt + std::max<int64_t>(params.n_predict, 0);
  if (need > n_ctx)
    throw Error(ErrorKind::context_overflow,
                fmt::format("{} cached + {} prompt + {} generated tokens exceed the context of {}",
                            session.n_past(), n_prompt, std::max(params.n_predict, 0), n_ctx));
  StopMatcher stops(params.stop);
  runtime::Sampler sampler(params.sampler);
  tokenizer::StreamDecoder decoder(detail::impl_of(model.tokenizer()));
  // The head step: the sampler needs the m largest logits (after its penalty), so a screened
  // head computes only the rows that can be among them; a chain that needs every logit gets
  // the exact head.
  const ModelInfo& info = model.info();
  const int64_t m = sampler.top_needed(info.n_vocab);
  const bool screened =
      params.head == HeadMode::screened && s.transformer.head().can_screen() && m < info.n_vocab;
  st.head = screened ? HeadMode::screened : HeadMode::exact;
  const model::BoundsAdjust adjust = [&](std::span<float> lower, std::span<float> upper) {
    sampler.adjust_bounds(lower, upper, s.tokens);
  };
  if (params.n_predict > 0) {
    st.decode_ms_per_token.reserve(static_cast<size_t>(params.n_predict));
    st.embedded_per_step.reserve(static_cast<size_t>(params.n_predict));
    st.generated_ids.reserve(static_cast<size_t>(params.n_predict));
  }

  if (!prompt_ids.empty()) {
    const auto t = Clock::now();
    s.forward(prompt_ids, false);
    st.prefill_ms = ms_since(t);
  }
  st.prompt_ids = std::move(prompt_ids);

  std::optional<StopReason> stop;
  if (params.n_predict == 0) stop = StopReason::n_predict;
  if (!stop && session.n_past() == n_ctx) stop = StopReason::ctx_full;
  while (!stop) {
    // The logits of the last token: the head step after its forward, timed with it (the
    // prompt's with the prefill). A token that ends the call gets no head step.
    auto t = Clock::now();
    model::HeadTop& top = s.head_top(m, screened, adjust);
    const double head_ms = ms_since(t);
    if (st.decode_ms_per_token.empty()) {
      st.prefill_ms += head_ms;
    } else {
      st.decode_ms += head_ms;
      st.decode_ms_per_token.back() += head_ms;
    }
    st.head_rows.push_back(static_cast<int32_t>(top.ids.size()));
    st.head_bytes.push_back(!screened ? info.head_bytes
                                      : (top.screen_read ? info.head_screen_bytes : 0) +
                                            top.ids.size() * info.head_row_bytes);

    t = Clock::now();
    const int32_t id = sampler.sample(top.ids, top.logits, s.tokens);
    st.sample_ms += ms_since(t);
    st.generated_ids.push_back(id);
    ++st.n_gen;

    const bool eog = model.tokenizer().is_eog(id);
    if (eog && !params.ignore_eos)
      stop = StopReason::eog;
    else if (stops.append(eog ? std::string() : decoder.push(id)))
      stop = StopReason::stop_string;
    else if (st.n_gen == params.n_predict)
      stop = StopReason::n_predict;
    else if (session.n_past() + 1 == n_ctx)
      stop = StopReason::ctx_full;
    std::string text = stops.take(false);
    if (stop && *stop != StopReason::stop_string) {
      stops.append(decoder.flush());
      text += stops.take(true);
    }
    if (on_text && !on_text(id, text) && !stop) stop = StopReason::callback;

    // Every generated token enters the cache, so the session can be continued; this
    // decode step embeds exactly this one token.
    t = Clock::now();
    const int32_t one[1] = {id};
    s.forward(one, false);
    const double ms = ms_since(t);
    st.decode_ms += ms;
    st.decode_ms_per_token.push_back(ms);
    st.embedded_per_step.push_back(1);
  }
  st.stop_reason = *stop;
  st.total_ms = ms_since(start);
  return st;
}

} // namespace

Stats generate(Session& session, std::span<const int32_t> prompt_ids, const GenerateParams& params,
               const TokenCallback& on_text) {
  return run(session, std::vector<int32_t>(prompt_ids.begin(), prompt_ids.end()), params, on_text,
             Clock::now(), 0.0);
}

Stats generate(Session& session, std::string_view prompt, const GenerateParams& params,
               const TokenCallback& on_text) {
  const auto start = Clock::now();
  const Tokenizer& tok = session.model().tokenizer();
  const bool add_bos = session.n_past() == 0 && params.add_bos.value_or(tok.add_bos_default());
  std::vector<int32_t> ids = tok.tokenize(prompt, add_bos, params.parse_special);
  return run(session, std::move(ids), params, on_text, start, ms_since(start));
}

} // namespace bitnet
