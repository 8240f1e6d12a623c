// `bitnet serve`: an OpenAI-compatible HTTP server (cpp-httplib) over one loaded model.
// Endpoints: POST /v1/completions, /v1/chat/completions (streaming or not), GET /v1/models,
// /health, /metrics, POST /tokenize, /detokenize. Built on the public API only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "bitnet/model.hpp"
#include "bitnet/session.hpp"

namespace bitnet::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;         // 0: any free port (see Server::port())
  std::string api_key;     // non-empty: every endpoint but /health needs "Bearer KEY"
  std::string cors_origin; // non-empty: Access-Control-Allow-Origin for it
  int32_t n_parallel = 1;  // slots
  int32_t n_ctx = 0;       // total context, split evenly among the slots; 0 = the model's
  int32_t n_batch = 512;   // prompt tokens per batched forward
  int32_t n_threads = 0;   // one pool shared by every slot; 0 = default_threads()
  KvType kv_type = KvType::f16;
  HeadMode head = HeadMode::screened;
  int32_t max_queue = 16;             // requests waiting for a slot before 503
  size_t max_body = 1 << 20;          // bytes of a request body (413 past it)
  int32_t shutdown_timeout_ms = 5000; // running requests get this long to finish on stop()
  std::string model_name;             // /v1/models id; default: general.name or the file name
};

class Server {
public:
  // Creates the slots (their KV caches) and binds the socket: Error(invalid_argument) for bad
  // options, Error(io) when the address cannot be bound.
  Server(std::shared_ptr<const Model> model, const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const; // the bound port
  int32_t n_ctx_per_slot() const;
  uint64_t kv_bytes() const;

  // Serves until stop(); returns once every connection is closed.
  void run();
  // Thread-safe, callable from any thread: refuses new requests (503), lets running ones
  // finish for up to shutdown_timeout_ms, cancels the rest, then ends run().
  void stop();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace bitnet::serve
