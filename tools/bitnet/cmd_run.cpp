// `bitnet run` (one prompt, llama-cli's flags and defaults) and `bitnet chat` (turns with the
// model's chat template, history kept in the session's KV cache).
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
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
  int32_t n_predict = 128;
  int32_t n_threads = default_threads();
  int32_t n_ctx = 0;
  int32_t n_batch = 512;
  int64_t seed = -1;
  SamplerParams sampler;
  bool ignore_eos = false;
  bool no_bos = false;
  bool no_special = false;
  bool no_echo = false;
  bool conversation = false;
  std::vector<std::string> stop;
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
                 "Threads (default: the physical cores this process may use)")
      ->capture_default_str()
      ->check(CLI::Range(1, kMaxThreads));
  cmd.add_option("-c,--ctx-size", o.n_ctx, "Context size; 0 = the model's context length")
      ->capture_default_str()
      ->check(CLI::Range(0, kIntMax));
  cmd.add_option("-b,--batch-size", o.n_batch, "Prompt tokens per batched forward")
      ->capture_default_str()
      ->check(CLI::Range(1, kIntMax));
  cmd.add_option("--temp", o.sampler.temp, "Temperature; <= 0 = greedy")->capture_default_str();
  cmd.add_option("--top-k", o.sampler.top_k, "Top-k sampling; <= 0 = off")->capture_default_str();
  cmd.add_option("--top-p", o.sampler.top_p, "Top-p (nucleus) sampling; 1 = off")
      ->capture_default_str()
      ->check(CLI::Range(0.0f, 1.0f));
  cmd.add_option("--min-p", o.sampler.min_p, "Min-p sampling; 0 = off")
      ->capture_default_str()
      ->check(CLI::Range(0.0f, 1.0f));
  cmd.add_option("--repeat-penalty", o.sampler.repeat_penalty,
                 "Penalty for tokens among the last --repeat-last-n; 1 = off")
      ->capture_default_str()
      ->check(CLI::Range(0.0f, std::numeric_limits<float>::max()));
  cmd.add_option("--repeat-last-n", o.sampler.repeat_last_n,
                 "Tokens the repeat penalty looks at; 0 = off, -1 = whole context")
      ->capture_default_str()
      ->check(CLI::Range(-1, kIntMax));
  cmd.add_option("-s,--seed", o.seed, "Sampling seed; -1 = random (the seed used is logged)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{-1}, std::numeric_limits<int64_t>::max()));
  cmd.add_flag("--ignore-eos", o.ignore_eos,
               "Keep generating through end-of-generation tokens. Unlike llama.cpp, which bans "
               "the EOS logit, no logit is changed: EOG tokens can still be sampled and printed");
  cmd.add_option("--stop", o.stop, "Stop when the generated text contains STR (repeatable)")
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
}

uint64_t resolve_seed(int64_t seed) {
  if (seed >= 0) return static_cast<uint64_t>(seed);
  const uint64_t s = std::random_device{}();
  spdlog::info("seed: {} (pass -s {} to repeat this run)", s, s);
  return s;
}

GenerateParams generate_params(const RunOptions& o) {
  GenerateParams p;
  p.n_predict = o.n_predict;
  p.sampler = o.sampler;
  p.sampler.seed = resolve_seed(o.seed);
  p.ignore_eos = o.ignore_eos;
  p.stop = o.stop;
  if (o.no_bos) p.add_bos = false;
  p.parse_special = !o.no_special;
  p.head = parse_head_mode(o.head);
  return p;
}

// Streams generated text to stdout, flushed per token. A closed stdout ends generation.
class StdoutSink {
public:
  // A closed pipe must end generation with an error, not kill the process.
  StdoutSink() { std::signal(SIGPIPE, SIG_IGN); }
  bool write(std::string_view text) {
    if (!text.empty() && std::fwrite(text.data(), 1, text.size(), stdout) != text.size()) {
      failed_ = true;
    }
    if (std::fflush(stdout) != 0) failed_ = true;
    return !failed_;
  }
  // Ends the output with a newline on a terminal only, so redirected stdout holds exactly
  // the prompt and the generated text.
  void finish() {
    if (!failed_ && isatty(STDOUT_FILENO)) write("\n");
    if (failed_) throw Error(ErrorKind::io, "cannot write to stdout");
  }

private:
  bool failed_ = false;
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
  SessionParams sp;
  sp.n_ctx = o.n_ctx;
  sp.n_batch = o.n_batch;
  sp.n_threads = o.n_threads;
  sp.kv_type = parse_kv_type(o.kv_type);
  l.session = std::make_unique<Session>(l.model, sp);
  spdlog::debug("model {}: {} ({} params), ctx {}, {} threads, isa {}", path,
                l.model->info().architecture, l.model->info().n_params, l.session->n_ctx(),
                l.session->n_threads(), current_isa());
  return l;
}

void report(const Stats& stats, const Loaded& l, const GenerateParams& params, const RunOptions& o,
            Clock::time_point t0) {
  RunReport r;
  r.model = &l.model->info();
  r.session = l.session.get();
  r.params = &params;
  r.total_ms = ms_since(t0);
  if (spdlog::should_log(spdlog::level::info)) print_timings(stderr, stats, r);
  if (!o.receipt.empty()) {
    write_json_file(o.receipt, make_receipt(stats, r));
    spdlog::info("receipt written to {}", o.receipt);
  }
}

int run_once(const RunOptions& o) {
  const auto t0 = Clock::now();
  if (o.prompt_given && !o.file.empty()) {
    throw Error(ErrorKind::invalid_argument, "give either -p/--prompt or -f/--file, not both");
  }
  const std::string path = resolve_model_path(o.model);
  std::string prompt;
  if (!o.file.empty()) {
    prompt = read_file(o.file);
  } else if (o.prompt_given) {
    prompt = o.prompt;
  } else if (o.model.empty()) {
    prompt = kDemoPrompt;
    spdlog::info("no prompt given: using \"{}\"", prompt);
  } else {
    throw Error(ErrorKind::invalid_argument, "no prompt: give -p TEXT or -f FILE");
  }
  if (prompt.empty()) throw Error(ErrorKind::invalid_input, "empty prompt");

  Loaded l = load(o, path);
  const GenerateParams params = generate_params(o); // after loading: errors come first

  StdoutSink out;
  if (!o.no_echo) out.write(prompt);
  const Stats stats = generate(*l.session, prompt, params,
                               [&](int32_t, std::string_view text) { return out.write(text); });
  out.finish();
  report(stats, l, params, o, t0);
  return 0;
}

// One chat turn: only the text the new messages add to the rendered history is evaluated;
// everything before it is already in the session's cache.
Stats chat_turn(Loaded& l, std::vector<ChatMessage>& history, std::vector<ChatMessage> added,
                const GenerateParams& base, const RunOptions& o, StdoutSink& out) {
  const Model& model = *l.model;
  const std::string before = history.empty() ? "" : model.render_chat(history, false);
  history.insert(history.end(), added.begin(), added.end());
  const std::string after = model.render_chat(history, true);
  const std::string delta =
      after.compare(0, before.size(), before) == 0 ? after.substr(before.size()) : after;

  const auto t_tok = Clock::now();
  const Tokenizer& tok = model.tokenizer();
  const bool add_bos = l.session->n_past() == 0 && !o.no_bos && tok.add_bos_default();
  const std::vector<int32_t> ids = tok.tokenize(delta, add_bos, true);
  const double tokenize_ms = ms_since(t_tok);

  const int64_t room =
      int64_t{l.session->n_ctx()} - l.session->n_past() - static_cast<int64_t>(ids.size());
  if (room <= 0) {
    throw Error(ErrorKind::context_overflow,
                fmt::format("the chat no longer fits the context ({} of {} tokens used); start "
                            "a new chat or raise -c",
                            l.session->n_past(), l.session->n_ctx()));
  }
  GenerateParams params = base;
  if (params.n_predict < 0 || params.n_predict > room) {
    params.n_predict = static_cast<int32_t>(room);
  }

  std::string reply;
  Stats stats = generate(*l.session, ids, params, [&](int32_t, std::string_view text) {
    reply += text;
    return out.write(text);
  });
  stats.tokenize_ms += tokenize_ms;
  out.write("\n");
  history.push_back({"assistant", reply});
  return stats;
}

int run_chat(const RunOptions& o) {
  const auto t0 = Clock::now();
  const std::string path = resolve_model_path(o.model);
  // llama-cli -cnv takes -p as the system prompt; --system wins when both are given.
  const std::string system = !o.system.empty() ? o.system : o.prompt;
  Loaded l = load(o, path);
  const GenerateParams params = generate_params(o); // after loading: errors come first
  const bool interactive = isatty(STDIN_FILENO);
  if (interactive) {
    spdlog::info("chat with {} ({} template); /exit or Ctrl-D ends it",
                 l.model->info().name.empty() ? path : l.model->info().name,
                 l.model->chat_template());
  }

  StdoutSink out;
  std::vector<ChatMessage> history;
  Stats total;
  std::string line;
  while (true) {
    if (interactive) std::fputs("> ", stderr);
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<ChatMessage> added;
    if (history.empty() && !system.empty()) added.push_back({"system", system});
    added.push_back({"user", line});
    accumulate(total, chat_turn(l, history, std::move(added), params, o, out));
  }
  out.finish();
  report(total, l, params, o, t0);
  return 0;
}

} // namespace

CommandFn add_run(CLI::App& root) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = root.add_subcommand(
      "run", "Generate text from a prompt (llama-cli's flags; the prompt is echoed to stdout)");
  cmd->add_option("-p,--prompt", o->prompt,
                  "Prompt text (echoed before the generated text unless --no-echo; with "
                  "--conversation it is the system prompt)");
  cmd->add_option("-f,--file", o->file, "Read the prompt from FILE (its bytes, unchanged)");
  add_generation_flags(*cmd, *o);
  cmd->add_flag("--no-echo", o->no_echo, "Do not print the prompt before the generated text");
  cmd->add_flag("--conversation,--cnv", o->conversation, "Chat mode: same as `bitnet chat`");
  cmd->add_option("--system", o->system, "System prompt (chat mode)");
  return [o, cmd]() -> int {
    o->prompt_given = cmd->count("--prompt") > 0;
    if (o->conversation) {
      if (!o->file.empty()) o->prompt = read_file(o->file);
      return run_chat(*o);
    }
    return run_once(*o);
  };
}

CommandFn add_chat(CLI::App& root) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = root.add_subcommand(
      "chat", "Chat using the model's template; one user turn per line of stdin, /exit ends");
  add_generation_flags(*cmd, *o);
  cmd->add_option("--system", o->system, "System prompt");
  return [o]() -> int { return run_chat(*o); };
}

} // namespace bitnet::cli
