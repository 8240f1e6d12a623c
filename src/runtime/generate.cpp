#include "bitnet/generate.hpp"

#include "bitnet/batch.hpp"

#include <fmt/format.h>

#include "runtime/sampler.hpp"
#include "runtime/session_impl.hpp"

namespace bitnet {

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
  case StopReason::interrupted:
    return "interrupted";
  }
  return "?";
}

void validate(const Model& model, const GenerateParams& params) {
  if (params.n_predict < -1)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("n_predict {} must be >= -1", params.n_predict));
  // The constructor throws on bad sampling values.
  runtime::Sampler(params.sampler).check_ids(static_cast<size_t>(model.info().n_vocab));
  for (const std::string& s : params.stop)
    if (s.empty()) throw Error(ErrorKind::invalid_argument, "stop strings must not be empty");
}

void validate(const Session& session, const GenerateParams& params, size_t n_prompt) {
  validate(session.model(), params);
  const int32_t n_ctx = session.n_ctx();
  if (params.context_shift && (params.n_keep < 0 || params.n_keep > n_ctx - 2))
    throw Error(ErrorKind::invalid_argument,
                fmt::format("--keep {} must be in [0, {}] (the context minus two)", params.n_keep,
                            n_ctx - 2));
  if (n_prompt == 0 && !detail::impl_of(session).has_last())
    throw Error(ErrorKind::invalid_input, "empty prompt and nothing in the session to continue");
  const int64_t free = int64_t{n_ctx} - session.n_past();
  if (static_cast<int64_t>(n_prompt) > free)
    throw Error(ErrorKind::context_overflow,
                session.n_past() == 0
                    ? fmt::format("the prompt has {} tokens; the context holds {}", n_prompt, n_ctx)
                    : fmt::format("{} cached + {} prompt tokens exceed the context of {}",
                                  session.n_past(), n_prompt, n_ctx));
}

namespace {

Stats run(Generation& g, const TokenCallback& on_text) {
  g.prefill();
  while (!g.done()) {
    const Generation::Token token = g.next();
    if (on_text && !on_text(token.id, token.text)) g.cancel();
    g.forward();
  }
  return g.stats();
}

} // namespace

Stats generate(Session& session, std::span<const int32_t> prompt_ids, const GenerateParams& params,
               const TokenCallback& on_text) {
  Generation g(session, prompt_ids, params);
  return run(g, on_text);
}

Stats generate(Session& session, std::string_view prompt, const GenerateParams& params,
               const TokenCallback& on_text) {
  Generation g(session, prompt, params);
  return run(g, on_text);
}

} // namespace bitnet
