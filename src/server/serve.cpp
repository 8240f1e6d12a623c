#include "serve.hpp"

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include "bitnet/error.hpp"
#include "bitnet/generate.hpp"
#include "bitnet/utf8.hpp"
#include "serve_api.hpp"
#include "serve_scheduler.hpp"
#include "serve_slots.hpp"

namespace bitnet::serve {

namespace {

using Clock = std::chrono::steady_clock;

// Set while a worker serves a connection that arrived past the bounded backlog: its request
// gets 503 at once (httplib's own task queue is unbounded and cannot refuse a connection).
thread_local bool t_overflow = false;

// httplib's task queue with a bound: n workers take connections first come first served; a
// connection arriving while max_backlog others wait for a worker goes to a reject thread
// that answers its request with 503 and closes it.
class BoundedTaskQueue : public httplib::TaskQueue {
public:
  BoundedTaskQueue(size_t n_workers, size_t max_backlog) : max_backlog_(max_backlog) {
    for (size_t i = 0; i < n_workers; ++i)
      threads_.emplace_back([this] { work(jobs_, false); });
    threads_.emplace_back([this] { work(overflow_, true); });
  }
  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard lock(mu_);
      (jobs_.size() >= max_backlog_ ? overflow_ : jobs_).push_back(std::move(fn));
    }
    cv_.notify_all();
  }
  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_)
      t.join();
  }

private:
  void work(std::deque<std::function<void()>>& queue, bool overflow) {
    while (true) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return shutdown_ || !queue.empty(); });
        if (queue.empty()) return; // shut down and drained
        fn = std::move(queue.front());
        queue.pop_front();
      }
      t_overflow = overflow;
      fn();
      t_overflow = false;
    }
  }
  const size_t max_backlog_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_, overflow_;
  std::vector<std::thread> threads_;
  bool shutdown_ = false;
};

// Equal strings, in time that depends only on the expected key's length.
bool constant_time_equal(std::string_view given, std::string_view expected) {
  unsigned diff = given.size() == expected.size() ? 0u : 1u;
  for (size_t i = 0; i < expected.size(); ++i)
    diff |= static_cast<unsigned char>(i < given.size() ? given[i] : 0) ^
            static_cast<unsigned char>(expected[i]);
  return diff == 0;
}

std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{:016x}{:08x}", prefix, rng(), static_cast<uint32_t>(rng()));
}

const char* status_type(int status) {
  switch (status) {
  case 401:
    return "authentication_error";
  case 404:
    return "not_found_error";
  case 503:
    return "unavailable_error";
  default:
    return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

void set_error(httplib::Response& res, int status, std::string_view message,
               std::string_view type = {}) {
  res.status = status;
  res.set_content(dump(error_body(status, message, type.empty() ? status_type(status) : type)),
                  "application/json");
}

void set_json(httplib::Response& res, const Json& body) {
  res.set_content(dump(body), "application/json");
}

} // namespace

struct Server::Impl {
  std::shared_ptr<const Model> model;
  ServerOptions opt;
  std::string model_name;
  int64_t created = 0;
  std::unique_ptr<SlotPool> slots;
  std::unique_ptr<Scheduler> scheduler; // destroyed before the slots its jobs hold
  httplib::Server http;
  int port = 0;

  std::atomic<bool> stopping{false};
  std::mutex run_mu;
  bool running = false, finished = false;

  std::atomic<uint64_t> n_requests{0}, n_rejected{0}; // /metrics counters

  void routes();
  void completion(const httplib::Request& req, httplib::Response& res, bool chat);
  std::string metrics_text();

  // Runs a handler, turning every failure into an OpenAI-shaped error reply.
  template <typename F> void guarded(httplib::Response& res, F&& f) {
    try {
      f();
    } catch (const ApiError& e) {
      if (e.status() == 503) ++n_rejected;
      set_error(res, e.status(), e.what(), e.type());
    } catch (const Error& e) {
      const bool client = e.kind() == ErrorKind::invalid_input ||
                          e.kind() == ErrorKind::invalid_argument ||
                          e.kind() == ErrorKind::context_overflow;
      set_error(res, client ? 400 : 500, e.what());
    } catch (const std::bad_alloc&) {
      set_error(res, 500, "out of memory");
    } catch (const std::exception& e) {
      set_error(res, 500, e.what());
    }
  }
};

void Server::Impl::completion(const httplib::Request& req, httplib::Response& res, bool chat) {
  const CompletionRequest cr = parse_completion(parse_object(req.body), chat);
  const Tokenizer& tok = model->tokenizer();
  std::vector<int32_t> ids;
  if (chat) {
    ids = tok.tokenize(model->render_chat(cr.messages, true), tok.add_bos_default());
  } else if (cr.prompt_is_ids) {
    ids = cr.prompt_ids;
    for (const int32_t id : ids)
      if (id >= tok.n_vocab())
        throw ApiError(
            400, fmt::format("token id {} is outside the vocabulary of {}", id, tok.n_vocab()));
  } else {
    ids = tok.tokenize(cr.prompt, tok.add_bos_default());
  }
  if (ids.empty()) throw ApiError(400, "the prompt is empty");
  const int64_t n_ctx = slots->n_ctx_per_slot();
  const auto n_prompt = static_cast<int32_t>(ids.size());
  if (n_prompt >= n_ctx)
    throw ApiError(400, fmt::format("the prompt has {} tokens; a slot's context holds {} "
                                    "(prompt plus at least one generated token)",
                                    n_prompt, n_ctx));
  const auto room = static_cast<int32_t>(n_ctx - n_prompt);
  GenerateParams p;
  p.n_predict = !cr.max_tokens || *cr.max_tokens < 0 ? room : std::min(*cr.max_tokens, room);
  p.sampler = cr.sampler;
  if (!cr.seed_given) p.sampler.seed = std::random_device{}();
  p.stop = cr.stop;
  p.ignore_eos = cr.ignore_eos;
  p.head = opt.head;
  validate(*model, p); // before queueing: a bad value is a 400, not an error in a stream
  const ReplyMeta meta{random_id(chat ? "chatcmpl-" : "cmpl-"),
                       static_cast<int64_t>(std::time(nullptr)), model_name};

  auto lease = slots->acquire(ids); // waits for a slot, or 503
  ++n_requests;
  auto job = std::make_shared<Job>(std::move(lease), std::move(ids), std::move(p), cr.cache_prompt);
  scheduler->submit(job);
  if (!cr.stream) {
    std::string text;
    for (bool finished = false; !finished;) {
      Job::Update u = job->wait();
      text += u.text;
      finished = u.finished;
    }
    const Stats& st = job->stats();
    set_json(res,
             completion_reply(cr, meta, text, finish_reason(st.stop_reason), n_prompt, st.n_gen));
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [cr, meta, job, n_prompt](size_t, httplib::DataSink& sink) {
        bool ok = true;
        const auto send = [&](const std::string& data) {
          const std::string event = "data: " + data + "\n\n";
          ok = ok && sink.write(event.data(), event.size());
          return ok;
        };
        if (cr.chat) send(dump(stream_chunk(cr, meta, "", nullptr, true)));
        for (bool finished = false; ok && !finished;) {
          Job::Update u = job->wait();
          if (!u.text.empty()) send(dump(stream_chunk(cr, meta, u.text, nullptr)));
          finished = u.finished;
        }
        if (!ok) return false; // the client is gone: the releaser cancels the job
        try {
          const Stats& st = job->stats();
          send(dump(stream_chunk(cr, meta, "", finish_reason(st.stop_reason))));
          if (cr.include_usage) send(dump(usage_chunk(cr, meta, n_prompt, st.n_gen)));
          send("[DONE]");
        } catch (const std::exception& e) {
          // Headers are sent: the error goes in the stream, as llama-server does.
          spdlog::warn("stream ended by an error: {}", e.what());
          send(dump(error_body(500, e.what(), "server_error")));
        }
        if (ok) sink.done();
        return ok;
      },
      [job](bool) { job->cancel(); }); // a no-op once it finished
}

std::string Server::Impl::metrics_text() {
  const double seconds = scheduler->generation_seconds();
  const uint64_t generated = scheduler->tokens_generated();
  std::string out;
  const auto metric = [&](const char* name, const char* type, const char* help, double value) {
    out += fmt::format("# HELP bitnet_{0} {1}\n# TYPE bitnet_{0} {2}\nbitnet_{0} {3}\n", name, help,
                       type, value);
  };
  metric("requests_total", "counter", "Completion requests given a slot.",
         static_cast<double>(n_requests.load()));
  metric("requests_rejected_total", "counter", "Requests refused with 503 (queue full, stopping).",
         static_cast<double>(n_rejected.load()));
  metric("prompt_tokens_total", "counter", "Prompt tokens of the completion requests.",
         static_cast<double>(scheduler->prompt_tokens()));
  metric("prompt_tokens_cached_total", "counter",
         "Prompt tokens reused from a slot's cache instead of evaluated.",
         static_cast<double>(scheduler->prompt_tokens_cached()));
  metric("tokens_generated_total", "counter", "Tokens generated.", static_cast<double>(generated));
  metric("generation_seconds_total", "counter", "Wall time with at least one request generating.",
         seconds);
  metric("tokens_per_second", "gauge",
         "Aggregate generation throughput: tokens generated over generation seconds.",
         seconds > 0 ? static_cast<double>(generated) / seconds : 0.0);
  metric("decode_steps_total", "counter",
         "Batched decode steps (one forward over every decoding request).",
         static_cast<double>(scheduler->steps()));
  metric("slots_total", "gauge", "Slots (--parallel).", slots->n_slots());
  metric("slots_busy", "gauge", "Slots serving a request.", slots->busy());
  metric("queue_depth", "gauge", "Requests waiting for a slot.", slots->queued());
  return out;
}

void Server::Impl::routes() {
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!opt.cors_origin.empty()) res.set_header("Access-Control-Allow-Origin", opt.cors_origin);
    if (t_overflow) {
      t_overflow = false;
      ++n_rejected;
      set_error(res, 503, "the server is busy: too many connections waiting");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!opt.api_key.empty() && req.path != "/health" && req.method != "OPTIONS") {
      const std::string auth = req.get_header_value("Authorization");
      const std::string_view bearer = "Bearer ";
      const bool ok =
          auth.compare(0, bearer.size(), bearer) == 0 &&
          constant_time_equal(std::string_view(auth).substr(bearer.size()), opt.api_key);
      if (!ok) {
        set_error(res, 401, "invalid or missing API key (Authorization: Bearer KEY)");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    switch (res.status) {
    case 404:
      set_error(res, 404, fmt::format("no endpoint {} {}", req.method, req.path));
      break;
    case 413:
      set_error(res, 413, "the request body is too large");
      break;
    default:
      set_error(res, res.status, fmt::format("HTTP error {}", res.status));
    }
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                std::exception_ptr) { set_error(res, 500, "internal error"); });
  http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    spdlog::debug("{} {} {}", req.method, req.path, res.status);
  });

  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (stopping)
      set_error(res, 503, "the server is shutting down");
    else
      set_json(res, Json{{"status", "ok"}});
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    const ModelInfo& info = model->info();
    Json m{{"id", model_name}, {"object", "model"}, {"created", created}, {"owned_by", "bitnet"}};
    m["meta"] = Json{{"n_vocab", info.n_vocab},
                     {"n_ctx_train", info.n_ctx_train},
                     {"n_ctx_slot", slots->n_ctx_per_slot()},
                     {"n_params", info.n_params},
                     {"size", info.file_size}};
    set_json(res, Json{{"object", "list"}, {"data", Json::array({std::move(m)})}});
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(), "text/plain; version=0.0.4");
  });
  http.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const TokenizeRequest t = parse_tokenize(parse_object(req.body));
      const Tokenizer& tok = model->tokenizer();
      const std::vector<int32_t> ids = tok.tokenize(t.content, t.add_special, t.parse_special);
      Json tokens = Json::array();
      for (const int32_t id : ids) {
        if (!t.with_pieces) {
          tokens.push_back(id);
          continue;
        }
        const std::string piece = tok.piece(id, true);
        Json p{{"id", id}};
        // A piece that is not whole UTF-8 goes as its bytes, as llama-server sends it.
        if (utf8_find_invalid(piece) == std::string_view::npos) {
          p["piece"] = piece;
        } else {
          Json bytes = Json::array();
          for (const char c : piece)
            bytes.push_back(static_cast<unsigned char>(c));
          p["piece"] = std::move(bytes);
        }
        tokens.push_back(std::move(p));
      }
      set_json(res, Json{{"tokens", std::move(tokens)}});
    });
  });
  http.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const std::vector<int32_t> ids = parse_detokenize(parse_object(req.body));
      const Tokenizer& tok = model->tokenizer();
      for (const int32_t id : ids)
        if (id >= tok.n_vocab())
          throw ApiError(
              400, fmt::format("token id {} is outside the vocabulary of {}", id, tok.n_vocab()));
      set_json(res, Json{{"content", tok.detokenize(ids)}});
    });
  });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] { completion(req, res, false); });
  });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] { completion(req, res, true); });
  });
  if (!opt.cors_origin.empty()) {
    http.Options(".*", [](const httplib::Request&, httplib::Response& res) {
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.status = 204;
    });
  }
}

Server::Server(std::shared_ptr<const Model> model, const ServerOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.model = std::move(model);
  m.opt = options;
  const ServerOptions& o = m.opt;
  if (o.n_parallel < 1 || o.n_parallel > 256)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("--parallel {} must be between 1 and 256", o.n_parallel));
  if (o.max_queue < 0) throw Error(ErrorKind::invalid_argument, "the queue size must be >= 0");
  const ModelInfo& info = m.model->info();
  const int32_t total = o.n_ctx > 0 ? o.n_ctx : std::min(info.n_ctx_train, kMaxDefaultCtx);
  if (total / o.n_parallel < 2)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("a context of {} split among {} slots leaves under 2 tokens each",
                            total, o.n_parallel));
  m.model_name = !o.model_name.empty() ? o.model_name
                 : !info.name.empty()  ? info.name
                                       : std::filesystem::path(info.path).filename().string();
  m.created = static_cast<int64_t>(std::time(nullptr));

  SessionParams sp;
  sp.n_ctx = total / o.n_parallel;
  sp.n_batch = o.n_batch;
  sp.kv_type = o.kv_type;
  sp.pool = std::make_shared<ThreadPool>(o.n_threads);
  sp.populate_kv = true; // each slot's first request pays no page faults (bench_serve round 1)
  m.slots = std::make_unique<SlotPool>(m.model, sp, o.n_parallel, o.max_queue);
  m.scheduler = std::make_unique<Scheduler>();

  m.http.set_payload_max_length(o.max_body);
  m.http.set_keep_alive_timeout(2);
  // Workers for every slot and queued request, plus a few for the light endpoints.
  const size_t n_workers = static_cast<size_t>(o.n_parallel + o.max_queue + 4);
  m.http.new_task_queue = [n_workers] { return new BoundedTaskQueue(n_workers, 8); };
  m.routes();
  m.port = o.port == 0 ? m.http.bind_to_any_port(o.host)
                       : (m.http.bind_to_port(o.host, o.port) ? o.port : -1);
  if (m.port < 0) throw Error(ErrorKind::io, fmt::format("cannot listen on {}:{}", o.host, o.port));
}

Server::~Server() = default;

int Server::port() const {
  return impl_->port;
}
int32_t Server::n_ctx_per_slot() const {
  return impl_->slots->n_ctx_per_slot();
}
uint64_t Server::kv_bytes() const {
  return impl_->slots->kv_bytes();
}

void Server::run() {
  {
    std::lock_guard lock(impl_->run_mu);
    if (impl_->stopping) return;
    impl_->running = true;
  }
  impl_->http.listen_after_bind();
  std::lock_guard lock(impl_->run_mu);
  impl_->finished = true;
}

void Server::stop() {
  Impl& m = *impl_;
  if (m.stopping.exchange(true)) return;
  m.slots->close();
  const auto deadline = Clock::now() + std::chrono::milliseconds(m.opt.shutdown_timeout_ms);
  while (m.slots->busy() > 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (m.slots->busy() > 0) {
    spdlog::warn("cancelling {} running request(s)", m.slots->busy());
    m.scheduler->cancel_all();
  }
  // listen may not have started its loop yet: stop until run() has returned.
  while (true) {
    {
      std::lock_guard lock(m.run_mu);
      if (!m.running || m.finished) return;
    }
    m.http.stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

} // namespace bitnet::serve
