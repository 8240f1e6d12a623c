// `bitnet run` (one prompt, llama-cli's flags and defaults) and `bitnet chat` (turns with the
// model's chat template, history kept in the session's KV cache).
#include <unistd.h>

#include <editline/readline.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bitnet/bitnet.hpp"
#include "cli_common.hpp"
#include "commands.hpp"

namespace bitnet::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct RunOptions {
  std::string model;
  std::string prompt;
  std::string file;
  std::string system;
  std::string receipt;
  std::string pretokenizer;
  std::string chat_template;
  std::string kv_type = "f16";
  std::string head = "screened";
  std::string seed = "-1";
  std::string in_prefix;
  std::string in_suffix;
  int32_t n_predict = -1;
  int32_t n_threads = default_threads();
  int32_t n_threads_batch = 0;
  int32_t n_ctx = 0;
  int32_t n_batch = 2048;
  int32_t n_ubatch = 512;
  int32_t n_keep = 0;
  SamplerParams sampler;
  bool ignore_eos = false;
  bool no_bos = false;
  bool no_special = false;
  bool no_echo = false;
  bool no_escape = false;
  bool no_perf = false;
  bool raw_bytes = false;
  bool verbose_prompt = false;
  bool context_shift = false;
  bool conversation = false;
  bool single_turn = false;
  std::vector<std::string> stop;
  std::vector<std::string> logit_bias; // llama-cli's TOKEN(+|-)BIAS, repeatable
  float typical = 1.0f;                // llama-cli's, accepted only when off
  int32_t mirostat = 0;
  bool prompt_given = false; // -p appeared (even empty)
};

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

void add_generation_flags(CLI::App& cmd, RunOptions& o) {
  constexpr int32_t kIntMax = std::numeric_limits<int32_t>::max();
  cmd.add_option(
      "-m,--model", o.model,
      "GGUF model file (default: the demo model tests/data/real-tiny/bitnet-tiny-brown.gguf)");
  cmd.add_option("-n,--n-predict", o.n_predict,
                 "Tokens to generate; -1 = until end of generation or a full context")
      ->capture_default_str()
      ->check(CLI::Range(-1, kIntMax));
  cmd.add_option("-t,--threads", o.n_threads,
                 fmt::format("Threads, 1 to {} (default: the physical cores this process may use)",
                             kMaxThreads))
      ->capture_default_str()
      ->check(CLI::Range(1, kMaxThreads));
  cmd.add_option("--threads-batch", o.n_threads_batch,
                 "(-tb) Accepted for llama-cli; prompt evaluation uses the -t threads")
      ->check(CLI::Range(0, kMaxThreads));
  cmd.add_option("-c,--ctx-size", o.n_ctx,
                 "Context size, at most the model's; 0 = the model's context length")
      ->capture_default_str()
      ->check(CLI::Range(0, kIntMax));
  cmd.add_option("-b,--batch-size", o.n_batch, "Logical batch: prompt tokens per decode call")
      ->capture_default_str()
      ->check(CLI::Range(1, kIntMax));
  cmd.add_option("--ubatch-size", o.n_ubatch,
                 "(-ub) Micro-batch: prompt tokens per batched forward (at most -b)")
      ->capture_default_str()
      ->check(CLI::Range(1, kIntMax));
  cmd.add_option("--temp", o.sampler.temp, "Temperature; <= 0 = greedy")->capture_default_str();
  cmd.add_option("--top-k", o.sampler.top_k, "Top-k sampling; <= 0 = off")->capture_default_str();
  cmd.add_option("--top-p", o.sampler.top_p, "Top-p (nucleus) sampling, 0 to 1; 1 = off")
      ->capture_default_str()
      ->check(CLI::Range(0.0f, 1.0f));
  cmd.add_option("--min-p", o.sampler.min_p, "Min-p sampling, 0 to 1; 0 = off")
      ->capture_default_str()
      ->check(CLI::Range(0.0f, 1.0f));
  cmd.add_option("--repeat-penalty", o.sampler.repeat_penalty,
                 "Penalty (> 0) for tokens among the last --repeat-last-n; 1 = off")
      ->capture_default_str()
      ->check(positive_number());
  cmd.add_option("--presence-penalty", o.sampler.presence_penalty,
                 "Subtracted from the logit of every token in the last --repeat-last-n; 0 = off")
      ->capture_default_str();
  cmd.add_option("--frequency-penalty", o.sampler.frequency_penalty,
                 "Times a token's count in the last --repeat-last-n, subtracted from its logit; "
                 "0 = off")
      ->capture_default_str();
  cmd.add_option("--logit-bias", o.logit_bias,
                 "TOKEN+BIAS or TOKEN-BIAS: add BIAS to the token's logit (15043-inf bans it; "
                 "repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
  cmd.add_option("--typical", o.typical,
                 "Accepted for llama-cli when off (1); typical sampling is not implemented");
  cmd.add_option("--mirostat", o.mirostat,
                 "Accepted for llama-cli when off (0); mirostat is not implemented");
  cmd.add_option("--repeat-last-n", o.sampler.repeat_last_n,
                 "Tokens the penalties look at; 0 = off, -1 = whole context")
      ->capture_default_str()
      ->check(CLI::Range(-1, kIntMax));
  cmd.add_option("-s,--seed", o.seed,
                 "Sampling seed, 0 to 2^64-1; -1 = random (the seed used is logged)")
      ->capture_default_str();
  cmd.add_flag("--ignore-eos", o.ignore_eos,
               "Keep generating through end-of-generation tokens. Unlike llama.cpp, which bans "
               "the EOS logit, no logit is changed: EOG tokens can still be sampled and printed");
  cmd.add_option("--stop,-r,--reverse-prompt", o.stop,
                 "Stop when the generated text contains STR (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
  cmd.add_flag("--no-bos", o.no_bos, "Do not prepend BOS (default: as the model says)");
  cmd.add_flag("--no-special", o.no_special,
               "Treat special-token text in the prompt (e.g. <|eot_id|>) as plain text");
  cmd.add_option("--pretokenizer", o.pretokenizer,
                 "Override the BPE pre-tokenizer: llama3 (llama-bpe) or default");
  cmd.add_option("--chat-template", o.chat_template,
                 "Chat format: bitnet or llama3 (default: from the model)");
  cmd.add_option("--kv-type", o.kv_type, "KV cache type: f16 (as bitnet.cpp) or f32")
      ->capture_default_str();
  cmd.add_option("--head", o.head,
                 "Output head: screened (an 8-bit screen picks the rows the sampler can reach; "
                 "the same tokens as exact, about half the bytes) or exact (every logit)")
      ->capture_default_str();
  cmd.add_option("--receipt", o.receipt, "Write a JSON receipt of the run to FILE");
  cmd.add_flag("--no-perf", o.no_perf, "Do not print the timing block");
  cmd.add_flag("--raw-bytes", o.raw_bytes,
               "Print the tokens' bytes as they are (default: bytes that never form a valid "
               "UTF-8 character become U+FFFD)");
  cmd.add_flag("--verbose-prompt", o.verbose_prompt, "Log the prompt's tokens before generating");
  cmd.add_flag("--no-escape", o.no_escape,
               "Take -p literally (default: \\n, \\t, \\\\ ... are processed, as llama-cli)");
  cmd.add_flag("-e,--escape")->description("Process escapes in -p (the default)");
}

constexpr std::string_view kRandomSeed = "-1";

// -s: -1 or a 64-bit unsigned value; anything else (18446744073709551616) is refused, not clamped.
std::optional<uint64_t> parse_seed(const std::string& text) {
  if (text == kRandomSeed) return std::nullopt;
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    throw Error(
        ErrorKind::invalid_argument,
        fmt::format("-s/--seed: '{}' is not -1 or an integer in [0, 18446744073709551615]", text));
  return v;
}

// --logit-bias as llama-cli reads it: a token id, a sign and a number ("15043+1", "15043-inf").
std::pair<int32_t, float> parse_logit_bias(const std::string& text) {
  const auto bad = [&](const std::string& why) {
    return Error(ErrorKind::invalid_argument,
                 fmt::format("--logit-bias '{}': {} (TOKEN+BIAS or TOKEN-BIAS, e.g. 15043+1 or "
                             "15043-inf)",
                             text, why));
  };
  const size_t sign = text.find_first_of("+-");
  int32_t id = -1;
  const char* end = text.data() + (sign == std::string::npos ? text.size() : sign);
  const auto [stop, ec] = std::from_chars(text.data(), end, id);
  if (sign == 0 || sign == std::string::npos || ec != std::errc() || stop != end)
    throw bad("no token id and sign");
  const std::string value = text.substr(sign + 1);
  char* value_end = nullptr;
  const float magnitude = std::strtof(value.c_str(), &value_end);
  if (value.empty() || value_end != value.c_str() + value.size() || magnitude < 0.0f)
    throw bad("the bias is not a number");
  // A NaN or +inf bias is refused by validate(), as for every caller of the library.
  return {id, text[sign] == '-' ? -magnitude : magnitude};
}

// The generation parameters, before anything is loaded: the option values CLI11 does not
// check are checked here (the rest, with the model, by validate()). -s -1 leaves the seed
// to draw_seed().
GenerateParams generate_params(const RunOptions& o) {
  // llama-cli scripts often pass the defaults; anything else would change tokens silently.
  if (o.typical != 1.0f)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("--typical {}: typical sampling is not implemented (only 1, off); "
                            "--top-k, --top-p and --min-p are",
                            o.typical));
  if (o.mirostat != 0)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("--mirostat {}: mirostat is not implemented (only 0, off); --top-k, "
                            "--top-p and --min-p are",
                            o.mirostat));
  GenerateParams p;
  p.n_predict = o.n_predict;
  p.sampler = o.sampler;
  for (const std::string& b : o.logit_bias)
    p.sampler.logit_bias.push_back(parse_logit_bias(b));
  if (const auto seed = parse_seed(o.seed)) p.sampler.seed = *seed;
  p.ignore_eos = o.ignore_eos;
  p.stop = o.stop;
  if (o.no_bos) p.add_bos = false;
  p.parse_special = !o.no_special;
  p.head = parse_head_mode(o.head);
  p.raw_bytes = o.raw_bytes;
  p.cancel = &interrupt_flag();
  return p;
}

// -s -1: a random seed, drawn and told once the options are checked against the model, so an
// error is the only line printed.
void draw_seed(const RunOptions& o, GenerateParams& p) {
  if (o.seed != kRandomSeed) return;
  p.sampler.seed = std::random_device{}();
  spdlog::info("seed: {} (pass -s {} to repeat this run)", p.sampler.seed, p.sampler.seed);
}

// Generated text to stdout, flushed per token. A closed or failing stdout ends generation;
// finish() then reports it (quietly for a closed pipe).
class StdoutSink {
public:
  bool write(std::string_view text) {
    if (closed_ || !error_.empty()) return false;
    try {
      write_stdout(text);
      flush_stdout();
    } catch (const StdoutClosed&) {
      closed_ = true;
    } catch (const Error& e) {
      error_ = e.what();
    }
    return !closed_ && error_.empty();
  }
  // Ends the output with a newline on a terminal only, so redirected stdout holds exactly
  // the prompt and the generated text.
  void finish() {
    if (isatty(STDOUT_FILENO)) write("\n");
    if (!error_.empty()) throw Error(ErrorKind::io, error_);
    if (closed_) throw StdoutClosed();
  }

private:
  bool closed_ = false;
  std::string error_;
};

struct Loaded {
  std::shared_ptr<Model> model;
  std::unique_ptr<Session> session;
};

Loaded load(const RunOptions& o, const std::string& path) {
  ModelOptions mo;
  mo.pretokenizer = o.pretokenizer;
  mo.chat_template = o.chat_template;
  mo.head = parse_head_mode(o.head);
  mo.n_threads = o.n_threads;
  Loaded l;
  l.model = Model::load(path, mo);
  // Positions beyond the trained context give meaningless text, so they are refused.
  if (o.n_ctx > l.model->info().n_ctx_train) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("-c {} is larger than the model's context length {}", o.n_ctx,
                            l.model->info().n_ctx_train));
  }
  if (o.n_threads_batch != 0 && o.n_threads_batch != o.n_threads)
    spdlog::warn("-tb {} ignored: prompt evaluation uses the {} threads of -t", o.n_threads_batch,
                 o.n_threads);
  SessionParams sp;
  sp.n_ctx = o.n_ctx;
  sp.n_batch = o.n_batch;
  sp.n_ubatch = o.n_ubatch;
  sp.n_threads = o.n_threads;
  sp.kv_type = parse_kv_type(o.kv_type);
  l.session = std::make_unique<Session>(l.model, sp);
  spdlog::debug("model {}: {} ({} params), ctx {}, {} threads, isa {}", path,
                l.model->info().architecture, l.model->info().n_params, l.session->n_ctx(),
                l.session->n_threads(), current_isa());
  return l;
}

void report(const Stats& stats, const Loaded& l, const GenerateParams& params, const RunOptions& o,
            double total_ms) {
  if (stats.stop_reason == StopReason::ctx_full)
    spdlog::info("context full ({} tokens): generation stopped (--context-shift goes on, -c sets "
                 "the size)",
                 l.session->n_ctx());
  RunReport r;
  r.model = &l.model->info();
  r.session = l.session.get();
  r.params = &params;
  r.total_ms = total_ms;
  // The timing block is a result, not chatter: --log-level warn keeps it, --no-perf drops it.
  if (!o.no_perf && spdlog::should_log(spdlog::level::warn)) print_timings(stderr, stats, r);
  if (!o.receipt.empty()) {
    write_json_file(o.receipt, make_receipt(stats, r));
    spdlog::info("receipt written to {}", o.receipt);
  }
}

// The prompt of `run`: -p (escapes processed unless --no-escape), -f FILE or -f - (stdin) or
// piped stdin (less one trailing newline, read_prompt_file), or the demo prompt when neither a
// model nor a prompt was given.
std::string read_prompt(const RunOptions& o) {
  if (o.prompt_given && !o.file.empty())
    throw Error(ErrorKind::invalid_argument, "give either -p/--prompt or -f/--file, not both");
  if (!o.file.empty()) return read_prompt_file(o.file);
  if (o.prompt_given) return o.no_escape ? o.prompt : process_escapes(o.prompt);
  if (!isatty(STDIN_FILENO)) {
    std::string piped = read_prompt_file("-");
    if (!piped.empty()) return piped;
  }
  if (o.model.empty()) {
    spdlog::info("no prompt given: using \"{}\"", kDemoPrompt);
    return kDemoPrompt;
  }
  throw Error(ErrorKind::invalid_argument, "no prompt: give -p TEXT, -f FILE or pipe it to stdin");
}

std::vector<std::string> inputs_of(const RunOptions& o, const std::string& model_path) {
  std::vector<std::string> in = {model_path};
  if (!o.file.empty() && o.file != "-") in.push_back(o.file);
  return in;
}

int run_once(const RunOptions& o) {
  const auto t0 = Clock::now();
  GenerateParams params = generate_params(o);
  const std::string path = resolve_model_path(o.model);
  const std::string prompt = read_prompt(o);
  if (prompt.empty()) throw Error(ErrorKind::invalid_input, "empty prompt");
  refuse_output_onto_input(o.receipt, inputs_of(o, path));

  Loaded l = load(o, path);
  const Model& model = *l.model;
  params.context_shift = o.context_shift;

  // Everything is checked before the first byte reaches stdout.
  const auto t_tok = Clock::now();
  const Tokenizer& tok = model.tokenizer();
  const bool add_bos = params.add_bos.value_or(tok.add_bos_default());
  const std::vector<int32_t> ids = tok.tokenize(prompt, add_bos, params.parse_special);
  const double tokenize_ms = ms_since(t_tok);
  if (ids.size() >= 2 && ids[0] == tok.bos() && ids[1] == tok.bos())
    spdlog::warn(
        "the prompt starts with BOS and BOS is added too (double BOS); --no-bos avoids it");
  // llama-cli's --keep: tokens of the prompt kept by a context shift, plus BOS; -1 = all.
  params.n_keep = o.n_keep < 0 ? static_cast<int32_t>(ids.size())
                               : std::min<int32_t>(o.n_keep + (add_bos ? 1 : 0),
                                                   static_cast<int32_t>(ids.size()));
  validate(*l.session, params, ids.size());
  draw_seed(o, params);
  if (o.verbose_prompt) {
    spdlog::info("prompt: {} tokens", ids.size());
    for (const int32_t id : ids)
      spdlog::info("{:6} -> '{}'", id, escape_text(tok.piece(id)));
  }

  install_interrupt_handlers();
  StdoutSink out;
  if (!o.no_echo) out.write(prompt);
  Stats stats = generate(*l.session, ids, params,
                         [&](int32_t, std::string_view text) { return out.write(text); });
  stats.tokenize_ms += tokenize_ms;
  if (stats.stop_reason == StopReason::interrupted) out.write("\n");
  report(stats, l, params, o, ms_since(t0));
  out.finish();
  return stats.stop_reason == StopReason::interrupted ? interrupted_status() : 0;
}

// Chat: the system prompt is evaluated once and kept; each turn adds the text its messages
// add to the rendered history. A full context drops whole old turns (their cache entries are
// shifted out, not recomputed), so the conversation never ends for lack of room.
class Chat {
public:
  Chat(Loaded& l, const RunOptions& o, GenerateParams params)
      : l_(l), o_(o), params_(std::move(params)) {}

  // Evaluates the system prompt (if any); its tokens stay through /clear and dropped turns.
  // Its counters go into `total`.
  void start(const std::string& system, Stats& total) {
    if (!system.empty()) history_.push_back({"system", system});
    if (history_.empty()) return;
    const auto t = Clock::now();
    const std::vector<int32_t> ids = tokens_for(l_.model->render_chat(history_, false));
    total.tokenize_ms += ms_since(t);
    validate(*l_.session, params_, ids.size());
    const auto t_eval = Clock::now();
    l_.session->evaluate(ids);
    total.prefill_ms += ms_since(t_eval);
    total.n_prompt += static_cast<int32_t>(ids.size());
    total.prompt_ids = ids;
    keep_tokens_ = l_.session->n_past();
    keep_messages_ = history_.size();
  }

  // One user turn; the reply streams to `out`. Returns the turn's counters.
  Stats turn(const std::string& text, StdoutSink& out) {
    const std::string before = l_.model->render_chat(history_, false);
    std::vector<ChatMessage> next = history_;
    next.push_back({"user", o_.in_prefix + text + o_.in_suffix});
    const std::string after = l_.model->render_chat(next, true);
    const std::string delta =
        after.compare(0, before.size(), before) == 0 ? after.substr(before.size()) : after;
    const auto t_tok = Clock::now();
    const std::vector<int32_t> ids = tokens_for(delta);
    const double tokenize_ms = ms_since(t_tok);
    make_room(static_cast<int32_t>(ids.size()));

    GenerateParams params = params_;
    const int32_t room =
        l_.session->n_ctx() - l_.session->n_past() - static_cast<int32_t>(ids.size());
    if (params.n_predict < 0 || params.n_predict > room) params.n_predict = room;
    validate(*l_.session, params, ids.size());
    spdlog::debug("turn {}: {} tokens: \"{}\"", turns_.size() + 1, ids.size(), escape_text(delta));

    turns_.push_back({l_.session->n_past(), history_.size()});
    history_ = std::move(next);
    std::string reply;
    Stats stats = generate(*l_.session, ids, params, [&](int32_t, std::string_view piece) {
      reply += piece;
      return out.write(piece);
    });
    stats.tokenize_ms += tokenize_ms;
    out.write("\n");
    history_.push_back({"assistant", reply});
    if (stats.stop_reason == StopReason::ctx_full)
      spdlog::debug("the reply filled the context; older turns go before the next one");
    return stats;
  }

  // /clear: back to the system prompt.
  void clear() {
    l_.session->truncate(keep_tokens_);
    history_.resize(keep_messages_);
    turns_.clear();
  }

  const std::vector<ChatMessage>& history() const { return history_; }

private:
  struct Turn {
    int32_t first_token;  // cache position where the turn starts
    size_t first_message; // its index in history_
  };

  std::vector<int32_t> tokens_for(const std::string& text) const {
    const Tokenizer& tok = l_.model->tokenizer();
    const bool add_bos = l_.session->n_past() == 0 && !o_.no_bos && tok.add_bos_default();
    return tok.tokenize(text, add_bos, true);
  }

  // Drops the oldest whole turns until the new prompt and a reply of at least a quarter of
  // the free context (or -n) fit. A message too long even then is an error for this turn.
  void make_room(int32_t n_prompt) {
    Session& s = *l_.session;
    const int32_t usable = s.n_ctx() - keep_tokens_;
    const int32_t reserve =
        params_.n_predict > 0 ? std::min(params_.n_predict, usable / 2) : std::max(1, usable / 4);
    const auto fits = [&](int32_t n_past) { return n_past + n_prompt + reserve <= s.n_ctx(); };
    const auto start_of = [&](size_t k) {
      return k < turns_.size() ? turns_[k].first_token : s.n_past();
    };
    size_t drop = 0;
    while (drop < turns_.size() && !fits(s.n_past() - (start_of(drop) - start_of(0))))
      ++drop;
    if (drop > 0) {
      const int32_t first = turns_[0].first_token;
      const int32_t end = drop < turns_.size() ? turns_[drop].first_token : s.n_past();
      s.shift(first, end - first);
      const size_t m_first = turns_[0].first_message;
      const size_t m_end = drop < turns_.size() ? turns_[drop].first_message : history_.size();
      history_.erase(history_.begin() + static_cast<std::ptrdiff_t>(m_first),
                     history_.begin() + static_cast<std::ptrdiff_t>(m_end));
      turns_.erase(turns_.begin(), turns_.begin() + static_cast<std::ptrdiff_t>(drop));
      for (Turn& t : turns_) {
        t.first_token -= end - first;
        t.first_message -= m_end - m_first;
      }
      spdlog::debug("context: dropped the {} oldest turn(s) ({} tokens) to make room", drop,
                    end - first);
    }
    if (s.n_past() + n_prompt >= s.n_ctx())
      throw Error(ErrorKind::context_overflow,
                  fmt::format("the message needs {} tokens but only {} of the context's {} are "
                              "free",
                              n_prompt, s.n_ctx() - s.n_past() - 1, s.n_ctx()));
  }

  Loaded& l_;
  const RunOptions& o_;
  GenerateParams params_;
  std::vector<ChatMessage> history_;
  std::vector<Turn> turns_;
  int32_t keep_tokens_ = 0;
  size_t keep_messages_ = 0;
};

// Line input: libedit (editing, history) on a terminal, plain stdin otherwise. A trailing
// backslash continues the line. Returns false at end of input or an interrupt at the prompt.
class LineReader {
public:
  LineReader() : terminal_(isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
    if (terminal_) {
      rl_outstream = stderr;
      rl_getc_function = getc_interruptible;
    }
  }
  bool interactive() const { return terminal_; }

  bool read(std::string& text) {
    text.clear();
    const char* prompt = "> ";
    while (true) {
      std::string line;
      if (!read_line(prompt, line)) return false;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty() && line.back() == '\\') {
        line.pop_back();
        text += line + "\n";
        prompt = ". ";
        continue;
      }
      text += line;
      if (terminal_ && !text.empty()) add_history(text.c_str());
      return true;
    }
  }

private:
  // libedit retries reads interrupted by a signal; this one gives up, so Ctrl-C ends the prompt.
  static int getc_interruptible(FILE*) {
    unsigned char c = 0;
    const ssize_t n = ::read(STDIN_FILENO, &c, 1);
    return n == 1 ? c : EOF;
  }

  bool read_line(const char* prompt, std::string& line) {
    if (terminal_) {
      char* raw = readline(prompt);
      if (raw == nullptr || interrupt_signal() != 0) {
        std::free(raw);
        return false;
      }
      line = raw;
      std::free(raw);
      return true;
    }
    return static_cast<bool>(std::getline(std::cin, line)) && interrupt_signal() == 0;
  }

  bool terminal_;
};

constexpr const char* kChatHelp =
    "commands: /help this list, /clear forget the conversation (the system prompt stays), "
    "/save FILE write the transcript as JSON, /exit end (also Ctrl-D, or Ctrl-C at the prompt); "
    "end a line with \\ to continue it";

int run_chat(const RunOptions& o) {
  const auto t0 = Clock::now();
  const std::string path = resolve_model_path(o.model);
  // llama-cli -cnv takes -p as the system prompt; --system wins when both are given.
  const std::string system = !o.system.empty() ? o.system : o.prompt;
  GenerateParams params = generate_params(o);
  refuse_output_onto_input(o.receipt, inputs_of(o, path));
  Loaded l = load(o, path);
  validate(*l.model, params); // before any output, with or without a system prompt
  draw_seed(o, params);
  Stats total;
  total.load_ms = l.model->info().load_ms;
  Chat chat(l, o, params);
  chat.start(system, total);
  double active_ms = ms_since(t0); // time not spent waiting for the user

  install_interrupt_handlers();
  LineReader reader;
  if (reader.interactive()) {
    spdlog::info("chat with {} ({} template); /help lists the commands",
                 l.model->info().name.empty() ? path : l.model->info().name,
                 l.model->chat_template());
  }
  StdoutSink out;
  std::string line;
  while (reader.read(line)) {
    const auto t_turn = Clock::now();
    if (line.empty()) continue;
    if (line == "/exit") break;
    if (line == "/help") {
      std::fprintf(stderr, "%s\n", kChatHelp);
      continue;
    }
    if (line == "/clear") {
      chat.clear();
      spdlog::info("conversation cleared");
      continue;
    }
    if (line == "/save" || line.rfind("/save ", 0) == 0) {
      const std::string file = line.size() > 6 ? line.substr(6) : "";
      if (file.empty()) {
        spdlog::error("/save needs a file name");
      } else {
        Json transcript;
        transcript["model"] = l.model->info().path;
        transcript["chat_template"] = l.model->chat_template();
        Json messages = Json::array();
        for (const ChatMessage& m : chat.history())
          messages.push_back({{"role", m.role}, {"content", m.content}});
        transcript["messages"] = std::move(messages);
        try {
          write_json_file(file, transcript);
          spdlog::info("transcript saved to {}", file);
        } catch (const Error& e) {
          spdlog::error("{}", e.what());
        }
      }
      continue;
    }
    Stats turn;
    try {
      turn = chat.turn(line, out);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::context_overflow) throw;
      spdlog::error("{}", e.what()); // this message only; the chat goes on
      continue;
    }
    accumulate(total, turn);
    active_ms += ms_since(t_turn);
    // Ctrl-C stops the reply and returns to the prompt; SIGTERM and SIGHUP end the chat.
    if (turn.stop_reason == StopReason::interrupted) {
      if (interrupt_signal() != SIGINT) break;
      clear_interrupt();
    }
    if (turn.stop_reason == StopReason::callback || o.single_turn) break;
  }
  if (reader.interactive()) std::fputs("\n", stderr);
  report(total, l, params, o, active_ms);
  out.finish();
  // Ctrl-C or Ctrl-D at the prompt is the ordinary way out; a termination signal is not.
  return interrupt_signal() != 0 && interrupt_signal() != SIGINT ? interrupted_status() : 0;
}

void add_chat_flags(CLI::App& cmd, RunOptions& o) {
  cmd.add_option("--system,--system-prompt", o.system, "(-sys) System prompt");
  cmd.add_option("--in-prefix", o.in_prefix, "Text put before every user message");
  cmd.add_option("--in-suffix", o.in_suffix, "Text put after every user message");
  cmd.add_flag("--single-turn", o.single_turn, "Answer one message, then exit");
  cmd.add_flag("--multiline-input")
      ->description("Accepted for llama-cli; a line ending in \\ always continues the message");
}

} // namespace

CommandFn add_run(CLI::App& root) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = root.add_subcommand(
      "run", "Generate text from a prompt (llama-cli's flags; the prompt is echoed to stdout)");
  cmd->add_option("-p,--prompt", o->prompt,
                  "Prompt text (echoed before the generated text unless --no-echo; with "
                  "--conversation it is the system prompt)");
  cmd->add_option("-f,--file", o->file,
                  "Read the prompt from FILE, less one trailing newline as llama-cli reads it (- = "
                  "stdin). Piped stdin is the prompt, read the same way, when neither -p nor -f "
                  "is given");
  add_generation_flags(*cmd, *o);
  cmd->add_flag("--no-echo,--no-display-prompt", o->no_echo,
                "Do not print the prompt before the generated text");
  cmd->add_flag("--context-shift", o->context_shift,
                "When the context is full, drop the oldest half after --keep and go on "
                "(default: stop)");
  cmd->add_option("--keep", o->n_keep,
                  "Prompt tokens a context shift keeps (BOS comes on top); -1 = the whole prompt")
      ->capture_default_str()
      ->check(CLI::Range(-1, std::numeric_limits<int32_t>::max()));
  cmd->add_flag("--conversation,-i,--interactive,--interactive-first", o->conversation,
                "Chat mode: same as `bitnet chat`");
  add_chat_flags(*cmd, *o);
  return [o, cmd]() -> int {
    o->prompt_given = cmd->count("--prompt") > 0;
    if (o->conversation) {
      if (!o->file.empty()) o->prompt = read_prompt_file(o->file);
      return run_chat(*o);
    }
    return run_once(*o);
  };
}

CommandFn add_chat(CLI::App& root) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = root.add_subcommand(
      "chat", "Chat using the model's template; one user turn per line of stdin, /help lists "
              "the commands");
  add_generation_flags(*cmd, *o);
  add_chat_flags(*cmd, *o);
  return [o]() -> int { return run_chat(*o); };
}

} // namespace bitnet::cli
