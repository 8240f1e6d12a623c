#include "bitnet/generate.hpp"

#include "bitnet/batch.hpp"

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
  }
  return "?";
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
