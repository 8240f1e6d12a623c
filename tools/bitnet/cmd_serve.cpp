// `bitnet serve`: the OpenAI-compatible HTTP server (src/server) with llama-server's flags.
#include <pthread.h>
#include <signal.h>

#include <limits>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bitnet/bitnet.hpp"
#include "cli_common.hpp"
#include "commands.hpp"
#include "serve.hpp"

namespace bitnet::cli {

namespace {

struct ServeOptions {
  std::string model;
  std::string pretokenizer;
  std::string chat_template;
  std::string kv_type = "f16";
  std::string head = "screened";
  serve::ServerOptions server;
};

int run_serve(ServeOptions& o) {
  // SIGINT/SIGTERM go to one thread that stops the server: blocked here, before any thread
  // exists, so every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::string path = resolve_model_path(o.model);
  ModelOptions mo;
  mo.pretokenizer = o.pretokenizer;
  mo.chat_template = o.chat_template;
  mo.head = parse_head_mode(o.head);
  mo.n_threads = o.server.n_threads;
  mo.batched_decode = o.server.n_parallel > 1; // the slots decode together
  o.server.kv_type = parse_kv_type(o.kv_type);
  o.server.head = mo.head;
  const std::shared_ptr<Model> model = Model::load(path, mo);
  const int32_t n_ctx_train = model->info().n_ctx_train;
  if (o.server.n_ctx > 0 && o.server.n_ctx / std::max(o.server.n_parallel, 1) > n_ctx_train)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("-c {} gives each of {} slots more than the model's context length {}",
                            o.server.n_ctx, o.server.n_parallel, n_ctx_train));

  serve::Server server(model, o.server);
  spdlog::info("{} slot(s) of {} tokens each, {:.1f} MiB of {} KV cache in all; {} threads",
               o.server.n_parallel, server.n_ctx_per_slot(),
               static_cast<double>(server.kv_bytes()) / (1024.0 * 1024.0), o.kv_type,
               o.server.n_threads > 0 ? o.server.n_threads : default_threads());
  spdlog::info("listening on http://{}:{}", o.server.host, server.port());

  std::thread signals([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("{}: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server.stop();
  });
  server.run();
  signals.join();
  spdlog::info("stopped");
  return 0;
}

} // namespace

CommandFn add_serve(CLI::App& root) {
  auto o = std::make_shared<ServeOptions>();
  constexpr int32_t kIntMax = std::numeric_limits<int32_t>::max();
  CLI::App* cmd = root.add_subcommand(
      "serve", "OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, ...)");
  serve::ServerOptions& s = o->server;
  cmd->add_option(
      "-m,--model", o->model,
      "GGUF model file (default: the demo model tests/data/real-tiny/bitnet-tiny-brown.gguf)");
  cmd->add_option("--host", s.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", s.port, "Port to listen on; 0 = any free port")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", s.api_key,
                  "Require 'Authorization: Bearer KEY' on every endpoint but /health");
  cmd->add_option(
      "--cors", s.cors_origin,
      "Allow browser requests from ORIGIN (Access-Control-Allow-Origin); off by default");
  cmd->add_option("--parallel", s.n_parallel, "Slots: requests served at once (llama-server -np)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("-c,--ctx-size", s.n_ctx,
                  "Total context, split evenly among the slots; 0 = the model's context length")
      ->capture_default_str()
      ->check(CLI::Range(0, kIntMax));
  cmd->add_option("-b,--batch-size", s.n_batch, "Prompt tokens per batched forward")
      ->capture_default_str()
      ->check(CLI::Range(1, kIntMax));
  cmd->add_option(
         "-t,--threads", s.n_threads,
         "Threads, shared by every slot (default: the physical cores this process may use)")
      ->check(CLI::Range(1, kMaxThreads));
  cmd->add_option("--queue", s.max_queue, "Requests that may wait for a slot; past them, 503")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--max-body", s.max_body, "Largest request body in bytes (413 past it)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 30));
  cmd->add_option("--shutdown-timeout", s.shutdown_timeout_ms,
                  "On SIGINT/SIGTERM, milliseconds running requests get to finish")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600000));
  cmd->add_option("-a,--alias", s.model_name, "Model name in /v1/models and replies");
  cmd->add_option("--pretokenizer", o->pretokenizer,
                  "Override the BPE pre-tokenizer: llama3 (llama-bpe) or default");
  cmd->add_option("--chat-template", o->chat_template,
                  "Chat format: bitnet or llama3 (default: from the model)");
  cmd->add_option("--kv-type", o->kv_type, "KV cache type: f16 (as bitnet.cpp) or f32")
      ->capture_default_str();
  cmd->add_option("--head", o->head, "Output head: screened or exact (as `bitnet run`)")
      ->capture_default_str();
  return [o]() -> int { return run_serve(*o); };
}

} // namespace bitnet::cli
