// `bitnet perplexity`: llama-perplexity's protocol, so figures compare with bitnet.cpp's.
// The whole file is tokenized once (with BOS); it is cut into chunks of -c tokens whose first
// token is replaced by BOS; each chunk is evaluated from an empty cache and the second half of
// its tokens is scored. PPL = exp(mean NLL), error = PPL · stddev(NLL) / sqrt(count - 1).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
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

struct PerplexityOptions {
  std::string model;
  std::string file;
  std::string pretokenizer;
  std::string kv_type = "f16";
  int32_t n_ctx = 0;
  int32_t n_batch = 512;
  int32_t n_threads = default_threads();
  int32_t max_chunks = -1;
  bool json = false;
};

// -log p(tok) from one row of logits, as llama-perplexity's log_softmax: max in float, the
// sum of expf in double.
double nll_of(std::span<const float> logits, int32_t tok) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits)
    sum += std::exp(l - max);
  return -(static_cast<double>(logits[static_cast<size_t>(tok)] - max) - std::log(sum));
}

int run_perplexity(const PerplexityOptions& o) {
  const auto t0 = Clock::now();
  const std::string text = read_prompt_file(o.file);
  if (text.empty()) throw Error(ErrorKind::invalid_input, "'" + o.file + "' is empty");

  ModelOptions mo;
  mo.pretokenizer = o.pretokenizer;
  mo.head = HeadMode::exact; // every logit of every token: no use for the screen
  const std::shared_ptr<Model> model = Model::load(resolve_model_path(o.model), mo);
  const ModelInfo& info = model->info();
  const int32_t n_ctx = o.n_ctx > 0 ? o.n_ctx : std::min(512, info.n_ctx_train);
  if (n_ctx < 2) throw Error(ErrorKind::invalid_argument, "-c must be at least 2");
  if (n_ctx > info.n_ctx_train) {
    throw Error(
        ErrorKind::invalid_argument,
        fmt::format("-c {} is larger than the model's context length {}", n_ctx, info.n_ctx_train));
  }

  const auto t_tok = Clock::now();
  const Tokenizer& tok = model->tokenizer();
  std::vector<int32_t> tokens = tok.tokenize(text, tok.add_bos_default(), false);
  const double tokenize_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - t_tok).count();
  if (tokens.size() < 2 * static_cast<size_t>(n_ctx)) {
    throw Error(ErrorKind::invalid_input,
                fmt::format("'{}' tokenizes to {} tokens; -c {} needs at least {}", o.file,
                            tokens.size(), n_ctx, 2 * n_ctx));
  }

  SessionParams sp;
  sp.n_ctx = n_ctx;
  sp.n_batch = std::min(o.n_batch, n_ctx);
  sp.n_threads = o.n_threads;
  sp.kv_type = parse_kv_type(o.kv_type);
  Session session(model, sp);

  int32_t n_chunk = static_cast<int32_t>(tokens.size() / static_cast<size_t>(n_ctx));
  if (o.max_chunks > 0) n_chunk = std::min(n_chunk, o.max_chunks);
  const int32_t first = n_ctx / 2;
  const auto n_vocab = static_cast<size_t>(info.n_vocab);
  spdlog::info("perplexity: {} tokens, {} chunks of {}, batch {}, {} threads, isa {}",
               tokens.size(), n_chunk, n_ctx, session.n_batch(), session.n_threads(),
               current_isa());

  const bool progress = o.json && isatty(STDERR_FILENO);
  double nll = 0.0;
  double nll2 = 0.0;
  int64_t count = 0;
  Json chunks = Json::array();
  const auto t_eval = Clock::now();
  for (int32_t c = 0; c < n_chunk; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + int64_t{c} * n_ctx,
                               tokens.begin() + int64_t{c + 1} * n_ctx);
    if (tok.add_bos_default()) chunk[0] = tok.bos();
    session.clear();
    double chunk_nll = 0.0;
    // Batches of n_batch keep only n_batch rows of logits alive; the token a row predicts
    // is the next one in the chunk.
    for (int32_t b = 0; b < n_ctx; b += session.n_batch()) {
      const int32_t n = std::min(session.n_batch(), n_ctx - b);
      const std::span<const float> logits = session.evaluate(
          std::span(chunk).subspan(static_cast<size_t>(b), static_cast<size_t>(n)), true);
      for (int32_t j = std::max(b, first); j < std::min(b + n, n_ctx - 1); ++j) {
        const double v = nll_of(logits.subspan(static_cast<size_t>(j - b) * n_vocab, n_vocab),
                                chunk[static_cast<size_t>(j) + 1]);
        chunk_nll += v;
        nll += v;
        nll2 += v * v;
        ++count;
      }
    }
    const double running = std::exp(nll / static_cast<double>(count));
    chunks.push_back({{"chunk", c + 1},
                      {"ppl", number(running)},
                      {"chunk_nll", number(chunk_nll / (n_ctx - 1 - first))}});
    if (c == 0) {
      const double s = std::chrono::duration<double>(Clock::now() - t_eval).count();
      spdlog::info("perplexity: {:.2f} seconds per pass - ETA {:.2f} minutes", s,
                   s * n_chunk / 60.0);
    }
    if (!o.json) {
      print_stdout("[{}]{:.4f},", c + 1, running);
      flush_stdout();
    } else if (progress) {
      std::fprintf(stderr, "\rchunk %d/%d  ppl %.4f", c + 1, n_chunk, running);
    }
  }
  if (progress) std::fputc('\n', stderr);
  const double eval_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_eval).count();

  const double mean = nll / static_cast<double>(count);
  const double ppl = std::exp(mean);
  const double var = nll2 / static_cast<double>(count) - mean * mean;
  const double err = var > 0 ? ppl * std::sqrt(var / static_cast<double>(count - 1)) : 0.0;
  if (!(var > 0)) spdlog::warn("perplexity: no spread in log-probabilities; error set to 0");

  if (o.json) {
    Json out;
    out["model"] = info.path;
    out["file"] = o.file;
    out["n_ctx"] = n_ctx;
    out["n_batch"] = session.n_batch();
    out["n_threads"] = session.n_threads();
    out["isa"] = current_isa();
    out["n_tokens"] = static_cast<int64_t>(tokens.size());
    out["n_chunks"] = n_chunk;
    out["scored_tokens"] = count;
    out["chunks"] = std::move(chunks);
    out["nll"] = number(mean);
    out["ppl"] = number(ppl);
    out["ppl_stderr"] = number(err);
    Json timings;
    timings["load"] = number(info.load_ms);
    timings["tokenize"] = number(tokenize_ms);
    timings["eval"] = number(eval_ms);
    timings["total"] = number(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    out["timings_ms"] = std::move(timings);
    write_stdout(dump(out, 2) + "\n");
  } else {
    print_stdout("\nFinal estimate: PPL = {:.4f} +/- {:.5f}\n", ppl, err);
  }
  flush_stdout();
  spdlog::info("perplexity: {} tokens scored in {:.2f} s ({:.1f} tokens/s evaluated)", count,
               eval_ms / 1e3, 1e3 * n_chunk * n_ctx / eval_ms);
  return 0;
}

} // namespace

CommandFn add_perplexity(CLI::App& root) {
  auto o = std::make_shared<PerplexityOptions>();
  CLI::App* cmd = root.add_subcommand(
      "perplexity", "Perplexity of a text file, computed as llama-perplexity does");
  cmd->add_option("-m,--model", o->model, "GGUF model file (default: the demo model)");
  cmd->add_option("-f,--file", o->file,
                  "Text file to score (less one trailing newline, as llama-perplexity reads it)")
      ->required();
  cmd->add_option("-c,--ctx-size", o->n_ctx,
                  "Tokens per chunk (default: 512, or the model's context length if smaller)")
      ->check(CLI::Range(0, std::numeric_limits<int32_t>::max()));
  cmd->add_option("-b,--batch-size", o->n_batch, "Tokens per batched forward")
      ->capture_default_str()
      ->check(CLI::Range(1, std::numeric_limits<int32_t>::max()));
  cmd->add_option("-t,--threads", o->n_threads,
                  "Threads (default: the physical cores this process may use)")
      ->capture_default_str()
      ->check(CLI::Range(1, kMaxThreads));
  cmd->add_option("--chunks", o->max_chunks, "Score at most N chunks (default: all)")
      ->check(CLI::Range(1, std::numeric_limits<int32_t>::max()));
  cmd->add_option("--pretokenizer", o->pretokenizer,
                  "Override the BPE pre-tokenizer: llama3 (llama-bpe) or default");
  cmd->add_option("--kv-type", o->kv_type, "KV cache type: f16 or f32")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print per-chunk values and the final figure as JSON");
  return [o]() -> int { return run_perplexity(*o); };
}

} // namespace bitnet::cli
