// Generation (generate()'s loop, one step at a time) and the batched decode of several
// sessions: one forward whose rows are the sequences (model::Transformer::decode_rows).
#include "bitnet/batch.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "bitnet/utf8.hpp"
#include "runtime/sampler.hpp"
#include "runtime/session_impl.hpp"

namespace bitnet {

namespace {

using Clock = std::chrono::steady_clock;
// SessionImpl, named through the library's access door (the name itself is private).
using SessionImpl = std::remove_reference_t<decltype(detail::impl_of(std::declval<Session&>()))>;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Holds back generated text that could still become a stop string, and finds the first
// complete one.
class StopMatcher {
public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
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

  std::vector<std::string> stops_;
  std::string text_;
  size_t emitted_ = 0;
  size_t end_ = std::string::npos;
};

std::vector<int32_t> tokenize_prompt(const Session& session, std::string_view prompt,
                                     const GenerateParams& params) {
  const Tokenizer& tok = session.model().tokenizer();
  const bool add_bos = session.n_past() == 0 && params.add_bos.value_or(tok.add_bos_default());
  return tok.tokenize(prompt, add_bos, params.parse_special);
}

} // namespace

struct Generation::Impl {
  Impl(Session& sess, std::vector<int32_t> prompt_ids, const GenerateParams& p,
       Clock::time_point t0, double tokenize_ms);

  void after_prefill();
  // The prompt's next micro-batch (prefill()'s unit, llama_decode's split), and what follows
  // once it is in the cache, forwarded in a step of `ms`.
  std::span<const int32_t> next_chunk() const {
    return std::span<const int32_t>(st.prompt_ids)
        .subspan(prefilled, static_cast<size_t>(chunks[chunks_done]));
  }
  void chunk_forwarded(double ms);
  // A cancel lands between two micro-batches: it ends the generation. True when it did.
  bool end_if_cancelled();
  void forwarded(double ms); // the pending token is in the cache, in a step of `ms`
  // A full cache makes room before the pending token is forwarded: the oldest half after
  // n_keep goes (llama-cli's context shift). Only with context_shift; else next() stopped.
  void make_room();
  bool cancelled() const { return cancel != nullptr && cancel->load(std::memory_order_relaxed); }

  Session& session;
  SessionImpl& s;
  int32_t n_predict;
  bool ignore_eos;
  bool raw_bytes;
  bool context_shift;
  int32_t n_keep;
  const std::atomic<bool>* cancel;
  Clock::time_point start;
  Stats st;
  size_t prefilled = 0;        // tokens of st.prompt_ids forwarded
  std::vector<int32_t> chunks; // the prompt's micro-batches (llama_decode's split)
  size_t chunks_done = 0;
  StopMatcher stops;
  runtime::Sampler sampler;
  tokenizer::StreamDecoder decoder;
  // The head step: the sampler needs the m largest logits (after its penalty), so a
  // screened head computes only the rows that can be among them; a chain that needs every
  // logit gets the exact head.
  int64_t m;
  bool screened;
  model::BoundsAdjust adjust;
  model::HeadTop batched_top; // the next head step, when prepare_next() computed it
  bool top_ready = false;
  double top_ms = 0.0; // its batched pass's time
  std::optional<int32_t> pending;
  std::optional<StopReason> stop;
  bool done = false;
};

Generation::Impl::Impl(Session& sess, std::vector<int32_t> prompt_ids, const GenerateParams& p,
                       Clock::time_point t0, double tokenize_ms)
    : session(sess), s(detail::impl_of(sess)), n_predict(p.n_predict), ignore_eos(p.ignore_eos),
      raw_bytes(p.raw_bytes), context_shift(p.context_shift), n_keep(p.n_keep), cancel(p.cancel),
      start(t0), stops(p.stop), sampler(p.sampler),
      decoder(detail::impl_of(sess.model().tokenizer())) {
  const Model& model = session.model();
  const int32_t n_ctx = session.n_ctx();
  const auto n_prompt = static_cast<int32_t>(prompt_ids.size());
  st.n_prompt = n_prompt;
  st.n_past_start = session.n_past();
  st.n_threads = session.n_threads();
  st.n_ctx = n_ctx;
  st.load_ms = model.info().load_ms;
  st.tokenize_ms = tokenize_ms;
  validate(session, p, prompt_ids.size());
  const ModelInfo& info = model.info();
  m = sampler.top_needed(info.n_vocab);
  screened = p.head == HeadMode::screened && s.transformer.head().can_screen() && m < info.n_vocab;
  st.head = screened ? HeadMode::screened : HeadMode::exact;
  adjust = [this](std::span<float> lower, std::span<float> upper) {
    sampler.adjust_bounds(lower, upper, s.tokens);
  };
  if (n_predict > 0) {
    const auto reserve = static_cast<size_t>(std::min(n_predict, n_ctx));
    st.decode_ms_per_token.reserve(reserve);
    st.embedded_per_step.reserve(reserve);
    st.generated_ids.reserve(reserve);
  }
  chunks = micro_batches(n_prompt, session.n_batch(), session.n_ubatch());
  st.prompt_ids = std::move(prompt_ids);
  if (st.prompt_ids.empty()) after_prefill();
}

// Generation ends before its first token when none is asked for or the context is full.
void Generation::Impl::after_prefill() {
  if (n_predict == 0)
    stop = StopReason::n_predict;
  else if (session.n_past() == session.n_ctx() && !context_shift)
    stop = StopReason::ctx_full;
  if (stop) forwarded(0.0);
}

void Generation::Impl::chunk_forwarded(double ms) {
  st.prefill_ms += ms;
  prefilled += static_cast<size_t>(chunks[chunks_done++]);
  if (prefilled == st.prompt_ids.size()) after_prefill();
}

bool Generation::Impl::end_if_cancelled() {
  if (!cancelled()) return false;
  stop = StopReason::interrupted;
  forwarded(0.0);
  return true;
}

void Generation::Impl::make_room() {
  if (session.n_past() < session.n_ctx()) return;
  session.shift(n_keep, (session.n_ctx() - n_keep) / 2);
  ++st.n_shifts;
}

void Generation::Impl::forwarded(double ms) {
  if (pending) {
    st.decode_ms += ms;
    st.decode_ms_per_token.push_back(ms);
    st.embedded_per_step.push_back(1); // this sequence's step embeds exactly its one token
    pending.reset();
  }
  if (!stop) return;
  st.stop_reason = *stop;
  st.total_ms = ms_since(start);
  done = true;
}

Generation::Generation(Session& session, std::span<const int32_t> prompt_ids,
                       const GenerateParams& params)
    : impl_(std::make_unique<Impl>(session,
                                   std::vector<int32_t>(prompt_ids.begin(), prompt_ids.end()),
                                   params, Clock::now(), 0.0)) {}

Generation::Generation(Session& session, std::string_view prompt, const GenerateParams& params) {
  const auto start = Clock::now();
  std::vector<int32_t> ids = tokenize_prompt(session, prompt, params);
  impl_ = std::make_unique<Impl>(session, std::move(ids), params, start, ms_since(start));
}

Generation::~Generation() = default;

Session& Generation::session() {
  return impl_->session;
}

int32_t Generation::prefill_left() const {
  return static_cast<int32_t>(impl_->st.prompt_ids.size() - impl_->prefilled);
}

void Generation::prefill(int32_t max_chunks) {
  Impl& g = *impl_;
  if (g.done) return;
  // One forward per micro-batch, split as llama_decode splits the whole prompt: the cache
  // (and so the tokens) does not depend on how a server spreads the prefill over its steps,
  // and a cancel lands between two of them.
  for (int32_t i = 0; i < max_chunks && prefill_left() > 0; ++i) {
    if (g.end_if_cancelled()) return;
    const auto t = Clock::now();
    g.s.forward(g.next_chunk(), false);
    g.chunk_forwarded(ms_since(t));
  }
}

Generation::Token Generation::next() {
  Impl& g = *impl_;
  if (prefill_left() > 0 || g.pending || g.done)
    throw Error(ErrorKind::invalid_argument,
                g.done ? "the generation has ended"
                       : (g.pending ? "the last token is not forwarded yet"
                                    : "the prompt is not forwarded yet"));
  Stats& st = g.st;
  const ModelInfo& info = g.session.model().info();
  // The logits of the last token: the head step after its forward, timed with it (the
  // prompt's with the prefill). A token that ends the generation gets no head step.
  // (prepare_next() may have computed it in a batched pass.)
  auto t = Clock::now();
  model::HeadTop& top = g.top_ready ? g.batched_top : g.s.head_top(g.m, g.screened, g.adjust);
  const double head_ms = g.top_ready ? g.top_ms : ms_since(t);
  g.top_ready = false;
  if (st.decode_ms_per_token.empty()) {
    st.prefill_ms += head_ms;
  } else {
    st.decode_ms += head_ms;
    st.decode_ms_per_token.back() += head_ms;
  }
  st.head_rows.push_back(static_cast<int32_t>(top.ids.size()));
  st.head_bytes.push_back(!g.screened ? info.head_bytes
                                      : (top.screen_read ? info.head_screen_bytes : 0) +
                                            top.ids.size() * info.head_row_bytes);

  t = Clock::now();
  const int32_t id = g.sampler.sample(top.ids, top.logits, g.s.tokens);
  st.sample_ms += ms_since(t);
  st.generated_ids.push_back(id);
  ++st.n_gen;

  const bool eog = g.session.model().tokenizer().is_eog(id);
  if (eog && !g.ignore_eos)
    g.stop = StopReason::eog;
  else if (g.stops.append(eog ? std::string() : g.decoder.push(id)))
    g.stop = StopReason::stop_string;
  else if (st.n_gen == g.n_predict)
    g.stop = StopReason::n_predict;
  else if (g.session.n_past() + 1 == g.session.n_ctx() && !g.context_shift)
    g.stop = StopReason::ctx_full;
  else if (g.cancelled()) // this token is the last: shown, held-back text flushed
    g.stop = StopReason::interrupted;
  std::string text = g.stops.take(false);
  if (g.stop && *g.stop != StopReason::stop_string) {
    g.stops.append(g.decoder.flush());
    text += g.stops.take(true);
  }
  if (!g.raw_bytes) text = utf8_sanitize(text);
  g.pending = id;
  return {id, std::move(text)};
}

std::optional<int32_t> Generation::pending() const {
  return impl_->pending;
}

void Generation::cancel() {
  if (!impl_->stop) impl_->stop = StopReason::callback;
}

void Generation::forward() {
  Impl& g = *impl_;
  if (!g.pending) throw Error(ErrorKind::invalid_argument, "no sampled token to forward");
  g.make_room();
  const auto t = Clock::now();
  const int32_t one[1] = {*g.pending};
  g.s.forward(one, false);
  g.forwarded(ms_since(t));
}

bool Generation::done() const {
  return impl_->done;
}

std::optional<StopReason> Generation::stop_reason() const {
  return impl_->stop;
}

const Stats& Generation::stats() const {
  return impl_->st;
}

namespace {

// Forwards chunks[i] on sessions[i] in one forward whose rows are all the chunks' tokens
// (model::Transformer::decode_rows): afterwards each session is as if it had forwarded its
// chunk alone (its hidden state that of the chunk's last token). Every check before any
// change: a rejected batch leaves every session as it was.
void forward_together(std::span<SessionImpl* const> sessions,
                      std::span<const std::span<const int32_t>> chunks) {
  size_t n_rows = 0;
  for (const std::span<const int32_t> c : chunks)
    n_rows += c.size();
  SessionImpl* scratch = nullptr; // whose forward scratch runs the batch: the largest context
  for (size_t i = 0; i < sessions.size(); ++i) {
    SessionImpl& s = *sessions[i];
    const SessionImpl& first = *sessions[0];
    if (s.model.get() != first.model.get() || s.pool.get() != first.pool.get())
      throw Error(ErrorKind::invalid_argument,
                  "batched sessions must share one model and one thread pool");
    if (std::find(sessions.begin(), sessions.begin() + static_cast<std::ptrdiff_t>(i),
                  sessions[i]) != sessions.begin() + static_cast<std::ptrdiff_t>(i))
      throw Error(ErrorKind::invalid_argument, "a session appears twice in a batch");
    if (static_cast<int64_t>(n_rows) > s.transformer.n_batch())
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("a batch of {} tokens exceeds a session's batch size {}", n_rows,
                              s.transformer.n_batch()));
    s.check(chunks[i]);
    if (!scratch || s.n_ctx > scratch->n_ctx) scratch = &s;
  }
  std::vector<int32_t> tokens;
  std::vector<int64_t> pos;
  std::vector<model::KvCache*> caches;
  std::vector<int64_t> last_row(sessions.size());
  for (size_t i = 0; i < sessions.size(); ++i) {
    SessionImpl& s = *sessions[i];
    for (size_t j = 0; j < chunks[i].size(); ++j) {
      tokens.push_back(chunks[i][j]);
      pos.push_back(static_cast<int64_t>(s.tokens.size() + j));
      caches.push_back(&s.cache);
    }
    last_row[i] = static_cast<int64_t>(tokens.size()) - 1;
  }
  auto& workers = detail::impl_of(*scratch->pool);
  {
    const std::lock_guard turn(workers.turn);
    scratch->transformer.decode_rows(tokens, pos, caches, workers.workers);
  }
  // Each session's last row goes to it, the scratch session's own last (its row 0 holds
  // another's until then).
  size_t scratch_at = 0;
  for (size_t i = 0; i < sessions.size(); ++i) {
    if (sessions[i] == scratch)
      scratch_at = i;
    else
      sessions[i]->transformer.set_hidden(scratch->transformer.hidden(last_row[i]));
  }
  if (last_row[scratch_at] != 0)
    scratch->transformer.set_hidden(scratch->transformer.hidden(last_row[scratch_at]));
  for (size_t i = 0; i < sessions.size(); ++i) {
    SessionImpl& s = *sessions[i];
    s.tokens.insert(s.tokens.end(), chunks[i].begin(), chunks[i].end());
    s.last = {};
    s.has_hidden = true;
  }
}

} // namespace

void decode_batch(std::span<Session* const> sessions, std::span<const int32_t> tokens) {
  if (sessions.empty() || sessions.size() != tokens.size())
    throw Error(ErrorKind::invalid_argument, fmt::format("a batch of {} sessions and {} tokens",
                                                         sessions.size(), tokens.size()));
  std::vector<SessionImpl*> impls;
  std::vector<std::span<const int32_t>> chunks;
  for (size_t i = 0; i < sessions.size(); ++i) {
    impls.push_back(&detail::impl_of(*sessions[i]));
    chunks.push_back(tokens.subspan(i, 1));
  }
  forward_together(impls, chunks);
}

void Generation::forward_units(std::span<Impl* const> todo) {
  // Groups whose rows fit every member's batch size (one unit always fits its own).
  for (size_t begin = 0; begin < todo.size();) {
    std::vector<SessionImpl*> sessions;
    std::vector<std::span<const int32_t>> chunks;
    int64_t rows = 0, room = std::numeric_limits<int64_t>::max();
    size_t end = begin;
    for (; end < todo.size(); ++end) {
      Impl& gi = *todo[end];
      const std::span<const int32_t> unit =
          gi.pending ? std::span<const int32_t>(&*gi.pending, 1) : gi.next_chunk();
      const auto count = static_cast<int64_t>(unit.size());
      room = std::min(room, gi.s.transformer.n_batch());
      if (end > begin && rows + count > room) break;
      rows += count;
      sessions.push_back(&gi.s);
      chunks.push_back(unit);
    }
    for (size_t i = begin; i < end; ++i)
      if (todo[i]->pending) todo[i]->make_room();
    const auto t = Clock::now();
    forward_together(sessions, chunks);
    const double ms = ms_since(t);
    for (size_t i = begin; i < end; ++i)
      if (todo[i]->pending)
        todo[i]->forwarded(ms);
      else
        todo[i]->chunk_forwarded(ms);
    begin = end;
  }
}

void prefill_batch(std::span<Generation* const> generations) {
  // The generations with prompt left, a cancelled one ended here as prefill() ends it.
  std::vector<Generation::Impl*> todo;
  for (Generation* g : generations) {
    Generation::Impl& gi = *g->impl_;
    if (gi.done || g->prefill_left() == 0 || gi.end_if_cancelled()) continue;
    todo.push_back(&gi);
  }
  Generation::forward_units(todo);
}

void decode_batch(std::span<Generation* const> generations) {
  std::vector<Generation::Impl*> todo;
  for (Generation* g : generations) {
    if (!g->impl_->pending)
      throw Error(ErrorKind::invalid_argument, "a batched generation has no token to forward");
    todo.push_back(g->impl_.get());
  }
  Generation::forward_units(todo);
  // The next head steps together too: one pass over the screen for every sequence that goes on.
  prepare_next(generations);
}

void step_batch(std::span<Generation* const> generations) {
  std::vector<Generation::Impl*> todo;
  for (Generation* g : generations) {
    Generation::Impl& gi = *g->impl_;
    if (gi.done || (!gi.pending && (g->prefill_left() == 0 || gi.end_if_cancelled()))) continue;
    todo.push_back(&gi);
  }
  Generation::forward_units(todo);
  prepare_next(generations);
}

size_t prepare_next(std::span<Generation* const> generations) {
  std::vector<float> hidden;
  std::vector<model::HeadQuery> queries;
  std::vector<Generation::Impl*> headed;
  for (Generation* g : generations) {
    Generation::Impl& gi = *g->impl_;
    const SessionImpl& first = generations.front()->impl_->s;
    if (gi.s.model.get() != first.model.get() || gi.s.pool.get() != first.pool.get())
      throw Error(ErrorKind::invalid_argument,
                  "batched generations must share one model and one thread pool");
    // As head_top()'s screened branch: the hidden state of the last token, no logits yet.
    const bool ready = !gi.done && !gi.stop && !gi.pending && !gi.top_ready && gi.screened &&
                       g->prefill_left() == 0 && gi.s.has_hidden && gi.s.last.empty();
    if (!ready) continue;
    const std::span<const float> h = gi.s.transformer.hidden();
    hidden.insert(hidden.end(), h.begin(), h.end());
    queries.push_back({gi.m, &gi.adjust, &gi.batched_top});
    headed.push_back(&gi);
  }
  if (queries.empty()) return 0;
  const auto t = Clock::now();
  SessionImpl& s = headed.front()->s;
  {
    auto& workers = detail::impl_of(*s.pool);
    const std::lock_guard turn(workers.turn);
    s.transformer.head().tops(hidden.data(), queries, workers.workers);
  }
  const double ms = ms_since(t);
  for (Generation::Impl* gi : headed) {
    gi->top_ready = true;
    gi->top_ms = ms;
  }
  return headed.size();
}

} // namespace bitnet
