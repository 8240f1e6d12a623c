// `bitnet serve` end to end on the demo model: an in-process server on a free loopback port,
// driven by httplib's client as curl would. Expected texts come from the `bitnet run` and
// `bitnet chat` binaries (greedy), and from the public Tokenizer, never from the server.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bitnet/bitnet.hpp"
#include "serve.hpp"
#include "serve_api.hpp"
#include "serve_slots.hpp"
#include "support/cli_runner.hpp"

namespace bitnet::serve {
namespace {

using nlohmann::json;
using test::run_cli;
using test::tiny_model;

std::shared_ptr<Model> tiny() {
  static const std::shared_ptr<Model> model = Model::load(tiny_model());
  return model;
}

// A server in this process, serving on a thread until destroyed.
class Running {
public:
  explicit Running(ServerOptions o) {
    o.port = 0;
    server_ = std::make_unique<Server>(tiny(), o);
    thread_ = std::thread([this] { server_->run(); });
    httplib::Client c("127.0.0.1", port());
    for (int i = 0; i < 500; ++i) {
      if (auto r = c.Get("/health"); r && r->status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error("the server did not come up");
  }
  ~Running() {
    server_->stop();
    thread_.join();
  }
  int port() const { return server_->port(); }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port());
    c.set_read_timeout(60);
    return c;
  }

private:
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

ServerOptions options(int32_t parallel = 4) {
  ServerOptions o;
  o.n_parallel = parallel;
  o.n_ctx = 256 * parallel; // 256 per slot: the demo model's trained context
  o.n_threads = 2;
  return o;
}

// The shared server of most tests: 4 slots of 256 tokens.
Running& shared() {
  static Running r(options());
  return r;
}

json post_json(httplib::Client& c, const std::string& path, const std::string& body, int& status) {
  auto r = c.Post(path, body, "application/json");
  if (!r) throw std::runtime_error("no reply from " + path);
  status = r->status;
  return json::parse(r->body);
}

json post_ok(httplib::Client& c, const std::string& path, const json& body) {
  int status = 0;
  json j = post_json(c, path, body.dump(), status);
  EXPECT_EQ(status, 200) << j.dump();
  return j;
}

// The events of an SSE body: the data of each "data: ..." line.
std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "unterminated event";
    if (end == std::string::npos) break;
    const std::string event = body.substr(pos, end - pos);
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    out.push_back(event.substr(6));
    pos = end + 2;
  }
  return out;
}

// Greedy text of `bitnet run` for a prompt: the independent expectation.
std::string run_greedy(const std::string& prompt, int n, int ctx = 256) {
  const auto r =
      run_cli({"run", "-m", tiny_model(), "-p", prompt, "-n", std::to_string(n), "--temp", "0",
               "-c", std::to_string(ctx), "-t", "2", "--no-echo", "--log-level", "error"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty()) << prompt;
  return r.out;
}

void expect_error_shape(const json& j, const std::string& type) {
  ASSERT_TRUE(j.contains("error")) << j.dump();
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_EQ(j["error"]["type"], type) << j.dump();
}

const std::vector<std::string> kPrompts = {
    "The jury said it did find that", "It was the first time", "The president of the United States",
    "In the morning the"};

TEST(Serve, HealthAndModels) {
  auto c = shared().client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  auto m = c.Get("/v1/models");
  ASSERT_TRUE(m);
  const json j = json::parse(m->body);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["object"], "model");
  EXPECT_TRUE(j["data"][0]["id"].is_string());
  EXPECT_EQ(j["data"][0]["meta"]["n_ctx_slot"], 256);
}

TEST(Serve, TokenizeDetokenizeAsTheTokenizer) {
  auto c = shared().client();
  const Tokenizer& tok = tiny()->tokenizer();
  const std::string text = "The jury said it did find that";
  const json t = post_ok(c, "/tokenize", {{"content", text}});
  EXPECT_EQ(t["tokens"].get<std::vector<int32_t>>(), tok.tokenize(text, false));
  const json tb = post_ok(c, "/tokenize", {{"content", text}, {"add_special", true}});
  EXPECT_EQ(tb["tokens"].get<std::vector<int32_t>>(), tok.tokenize(text, true));
  const json tp = post_ok(c, "/tokenize", {{"content", text}, {"with_pieces", true}});
  ASSERT_EQ(tp["tokens"].size(), t["tokens"].size());
  std::string joined;
  for (const json& p : tp["tokens"])
    joined += p["piece"].get<std::string>();
  EXPECT_EQ(joined, text);
  const json d = post_ok(c, "/detokenize", {{"tokens", t["tokens"]}});
  EXPECT_EQ(d["content"], text);
}

TEST(Serve, CompletionGreedyEqualsRun) {
  auto c = shared().client();
  for (const std::string& prompt : {kPrompts[0], kPrompts[1]}) {
    const std::string expected = run_greedy(prompt, 24);
    const json j =
        post_ok(c, "/v1/completions", {{"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0}});
    EXPECT_EQ(j["object"], "text_completion");
    EXPECT_EQ(j["id"].get<std::string>().rfind("cmpl-", 0), 0u);
    ASSERT_EQ(j["choices"].size(), 1u);
    EXPECT_EQ(j["choices"][0]["text"], expected) << prompt;
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(j["usage"]["completion_tokens"], 24);
    EXPECT_EQ(j["usage"]["prompt_tokens"], tiny()->tokenizer().tokenize(prompt, true).size());
    EXPECT_EQ(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"].get<int>() + 24);
  }
}

TEST(Serve, PromptReuseKeepsGreedyExact) {
  // The same prompt twice, then a longer one starting with it: the later requests reuse the
  // slot's cache and must still return run's tokens.
  auto c = shared().client();
  const std::string p = kPrompts[2];
  const std::string longer = p + " and the";
  const std::string expected = run_greedy(p, 16);
  const std::string expected_longer = run_greedy(longer, 16);
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(
        post_ok(c, "/v1/completions",
                {{"prompt", p}, {"max_tokens", 16}, {"temperature", 0}})["choices"][0]["text"],
        expected);
  EXPECT_EQ(
      post_ok(c, "/v1/completions",
              {{"prompt", longer}, {"max_tokens", 16}, {"temperature", 0}})["choices"][0]["text"],
      expected_longer);
  EXPECT_EQ(post_ok(c, "/v1/completions",
                    {{"prompt", longer},
                     {"max_tokens", 16},
                     {"temperature", 0},
                     {"cache_prompt", false}})["choices"][0]["text"],
            expected_longer);
}

TEST(Serve, StreamingCompletionMatchesNonStreaming) {
  auto c = shared().client();
  const json body = {{"prompt", kPrompts[0]},
                     {"max_tokens", 20},
                     {"temperature", 0},
                     {"stream", true},
                     {"stream_options", {{"include_usage", true}}}};
  auto r = c.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type").rfind("text/event-stream", 0), 0u);
  const auto events = sse_events(r->body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  std::string finish;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json j = json::parse(events[i]);
    EXPECT_EQ(j["object"], "text_completion");
    if (j["choices"].empty()) { // the usage chunk
      EXPECT_EQ(j["usage"]["completion_tokens"], 20);
      continue;
    }
    text += j["choices"][0]["text"].get<std::string>();
    if (!j["choices"][0]["finish_reason"].is_null()) finish = j["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, run_greedy(kPrompts[0], 20));
  EXPECT_EQ(finish, "length");
}

TEST(Serve, ChatEqualsBitnetChat) {
  auto c = shared().client();
  const std::string user = "Tell me about the jury.";
  const auto r = run_cli({"chat", "-m", tiny_model(), "-n", "16", "--temp", "0", "-c", "256", "-t",
                          "2", "--log-level", "error"},
                         user + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_FALSE(r.out.empty());
  const std::string expected = r.out.substr(0, r.out.size() - 1); // the turn's closing newline
  const json msgs = json::array({{{"role", "user"}, {"content", user}}});
  const json j = post_ok(c, "/v1/chat/completions",
                         {{"messages", msgs}, {"max_tokens", 16}, {"temperature", 0}});
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], expected);

  auto s = c.Post(
      "/v1/chat/completions",
      json({{"messages", msgs}, {"max_tokens", 16}, {"temperature", 0}, {"stream", true}}).dump(),
      "application/json");
  ASSERT_TRUE(s);
  const auto events = sse_events(s->body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  const json first = json::parse(events.front());
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  for (size_t i = 1; i + 1 < events.size(); ++i) {
    const json d = json::parse(events[i])["choices"][0]["delta"];
    if (d.contains("content")) text += d["content"].get<std::string>();
  }
  EXPECT_EQ(text, expected);
  EXPECT_EQ(json::parse(events[events.size() - 2])["choices"][0]["finish_reason"], "length");
}

TEST(Serve, StopStringEndsWithStop) {
  auto c = shared().client();
  const std::string full = run_greedy(kPrompts[0], 24);
  ASSERT_GE(full.size(), 12u);
  const std::string stop = full.substr(8, 3);
  const json j =
      post_ok(c, "/v1/completions",
              {{"prompt", kPrompts[0]}, {"max_tokens", 24}, {"temperature", 0}, {"stop", stop}});
  EXPECT_EQ(j["choices"][0]["text"], full.substr(0, full.find(stop)));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
}

TEST(Serve, LogitBiasBansAToken) {
  auto c = shared().client();
  const std::string first = run_greedy(kPrompts[0], 1);
  const std::vector<int32_t> ids = tiny()->tokenizer().tokenize(first, false);
  ASSERT_EQ(ids.size(), 1u) << first;
  const json j = post_ok(c, "/v1/completions",
                         {{"prompt", kPrompts[0]},
                          {"max_tokens", 1},
                          {"temperature", 0},
                          {"logit_bias", {{std::to_string(ids[0]), -100}}},
                          {"presence_penalty", 0.5},
                          {"frequency_penalty", 0.5}});
  EXPECT_NE(j["choices"][0]["text"], first);
  EXPECT_EQ(j["usage"]["completion_tokens"], 1);
}

TEST(Serve, MaxTokensCappedToTheSpaceLeft) {
  auto c = shared().client();
  const json j = post_ok(c, "/v1/completions",
                         {{"prompt", kPrompts[0]},
                          {"max_completion_tokens", 100000},
                          {"temperature", 0},
                          {"seed", 1}});
  const int n_prompt = j["usage"]["prompt_tokens"];
  EXPECT_LE(n_prompt + j["usage"]["completion_tokens"].get<int>(), 256);
}

TEST(Serve, FourConcurrentGreedyEqualSequential) {
  auto c = shared().client();
  std::vector<std::string> sequential;
  for (const std::string& p : kPrompts)
    sequential.push_back(post_ok(c, "/v1/completions",
                                 {{"prompt", p},
                                  {"max_tokens", 32},
                                  {"temperature", 0},
                                  {"cache_prompt", false}})["choices"][0]["text"]);
  EXPECT_EQ(sequential[3], run_greedy(kPrompts[3], 32));
  std::vector<std::future<std::string>> results;
  for (size_t i = 0; i < kPrompts.size(); ++i)
    results.push_back(std::async(std::launch::async, [&, i] {
      auto cc = shared().client();
      const bool stream = i % 2 == 1;
      const json body = {
          {"prompt", kPrompts[i]}, {"max_tokens", 32}, {"temperature", 0}, {"stream", stream}};
      auto r = cc.Post("/v1/completions", body.dump(), "application/json");
      if (!r || r->status != 200) return std::string("<failed>");
      if (!stream) return json::parse(r->body)["choices"][0]["text"].get<std::string>();
      std::string text;
      for (const std::string& e : sse_events(r->body))
        if (e != "[DONE]") text += json::parse(e)["choices"][0]["text"].get<std::string>();
      return text;
    }));
  for (size_t i = 0; i < kPrompts.size(); ++i)
    EXPECT_EQ(results[i].get(), sequential[i]) << kPrompts[i];
}

TEST(Serve, BadRequestsGet400WithTheErrorShape) {
  auto c = shared().client();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/v1/completions", "{not json"},
      {"/v1/completions", "[1, 2]"},
      {"/v1/completions", R"({})"},
      {"/v1/completions", R"({"prompt": 5})"},
      {"/v1/completions", R"({"prompt": "x", "max_tokens": "ten"})"},
      {"/v1/completions", R"({"prompt": "x", "max_tokens": 1.5})"},
      {"/v1/completions", R"({"prompt": "x", "temperature": "hot"})"},
      {"/v1/completions", R"({"prompt": "x", "top_p": 2})"},
      {"/v1/completions", R"({"prompt": "x", "n": 2})"},
      {"/v1/completions", R"({"prompt": "x", "stream": "yes"})"},
      {"/v1/completions", R"({"prompt": "x", "stop": [1]})"},
      {"/v1/completions", R"({"prompt": [99999999]})"},
      {"/v1/completions", R"({"prompt": [-1]})"},
      {"/v1/chat/completions", R"({"messages": []})"},
      {"/v1/chat/completions", R"({"messages": "hi"})"},
      {"/v1/chat/completions", R"({"messages": [{"role": "wizard", "content": "hi"}]})"},
      {"/v1/chat/completions", R"({"messages": [{"content": "hi"}]})"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": 3}]})"},
      {"/v1/completions", R"({"prompt": "x", "presence_penalty": 3})"},
      {"/v1/completions", R"({"prompt": "x", "frequency_penalty": "a"})"},
      {"/v1/completions", R"({"prompt": "x", "logit_bias": {"abc": 1}})"},
      {"/v1/completions", R"({"prompt": "x", "logit_bias": {"99999999": 1}})"},
      // The first id past the demo model's 2717-token vocabulary; a stream too (no 200 first).
      {"/v1/completions", R"({"prompt": "x", "logit_bias": {"2717": 1}})"},
      {"/v1/completions", R"({"prompt": "x", "logit_bias": {"2717": 1}, "stream": true})"},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"2717": -1},
           "stream": true})"},
      {"/v1/completions", R"({"prompt": "x", "logit_bias": {"5": 1000}})"},
      {"/v1/completions", R"({"prompt": "x", "logit_bias": [1]})"},
      // What this server does not implement is refused, not silently left out.
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}],
           "response_format": {"type": "json_object"}})"},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}],
           "tools": [{"type": "function", "function": {"name": "f"}}]})"},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}], "logprobs": true})"},
      {"/v1/completions", R"({"prompt": "x", "logprobs": 3})"},
      {"/v1/completions", R"({"prompt": "x", "echo": true})"},
      {"/v1/completions", R"({"prompt": "x", "suffix": "y"})"},
      {"/v1/completions", R"({"prompt": "x", "best_of": 2})"},
      {"/v1/completions", R"({"prompt": "x", "grammar": "root ::= \"a\""})"},
      {"/tokenize", R"({"content": 3})"},
      {"/detokenize", R"({"tokens": ["a"]})"},
      {"/detokenize", R"({"tokens": [1000000]})"},
  };
  for (const auto& [path, body] : cases) {
    int status = 0;
    const json j = post_json(c, path, body, status);
    EXPECT_EQ(status, 400) << path << " " << body;
    expect_error_shape(j, "invalid_request_error");
  }
  // Their neutral values are accepted.
  {
    int status = 0;
    post_json(c, "/v1/chat/completions",
              R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1,
                  "response_format": {"type": "text"}, "tools": [], "tool_choice": "none",
                  "logprobs": false, "top_logprobs": 0})",
              status);
    EXPECT_EQ(status, 200);
    post_json(c, "/v1/completions",
              R"({"prompt": "x", "max_tokens": 1, "logprobs": null, "echo": false,
                  "suffix": "", "best_of": 1})",
              status);
    EXPECT_EQ(status, 200);
  }
  // A prompt longer than a slot's context.
  std::string lng;
  for (int i = 0; i < 300; ++i)
    lng += " the";
  int status = 0;
  const json j = post_json(c, "/v1/completions", json({{"prompt", lng}}).dump(), status);
  EXPECT_EQ(status, 400);
  expect_error_shape(j, "invalid_request_error");
  // Unknown endpoint.
  auto r = c.Get("/v1/nothing");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  expect_error_shape(json::parse(r->body), "not_found_error");
}

TEST(Serve, BodyLimit) {
  ServerOptions o = options(1);
  o.max_body = 1000;
  Running s(o);
  auto c = s.client();
  const std::string body = json({{"prompt", std::string(2000, 'a')}}).dump();
  auto r = c.Post("/v1/completions", body, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  expect_error_shape(json::parse(r->body), "invalid_request_error");
}

TEST(Serve, ApiKey) {
  ServerOptions o = options(1);
  o.api_key = "sesame";
  Running s(o);
  auto c = s.client();
  auto h = c.Get("/health"); // exempt
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  for (const char* path : {"/v1/models", "/metrics"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << path;
    expect_error_shape(json::parse(r->body), "authentication_error");
  }
  auto wrong = c.Get("/v1/models", {{"Authorization", "Bearer sesamf"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto prefix = c.Get("/v1/models", {{"Authorization", "Bearer sesame2"}});
  ASSERT_TRUE(prefix);
  EXPECT_EQ(prefix->status, 401);
  auto ok = c.Get("/v1/models", {{"Authorization", "Bearer sesame"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  auto post = c.Post("/v1/completions", {{"Authorization", "Bearer sesame"}},
                     R"({"prompt": "The", "max_tokens": 2})", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 200);
}

TEST(Serve, Cors) {
  ServerOptions o = options(1);
  o.cors_origin = "http://example.test";
  Running s(o);
  auto c = s.client();
  auto r = c.Get("/v1/models");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "http://example.test");
  auto pre = c.Options("/v1/chat/completions");
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 204);
  EXPECT_NE(pre->get_header_value("Access-Control-Allow-Headers").find("Authorization"),
            std::string::npos);
  // Off by default.
  auto plain = shared().client().Get("/v1/models");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->has_header("Access-Control-Allow-Origin"));
}

int metric(httplib::Client& c, const std::string& name) {
  auto r = c.Get("/metrics");
  if (!r) return -1;
  const std::string key = "\nbitnet_" + name + " ";
  const size_t at = r->body.find(key);
  if (at == std::string::npos) return -1;
  return std::stoi(r->body.substr(at + key.size()));
}

TEST(Serve, DisconnectMidStreamFreesTheSlot) {
  ServerOptions o = options(1);
  o.max_queue = 0;
  Running s(o);
  auto c = s.client();
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body =
      json({{"prompt", "The"}, {"max_tokens", 250}, {"stream", true}, {"temperature", 0}}).dump();
  req.set_header("Content-Type", "application/json");
  int chunks = 0;
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 2; };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  c.send(req, res, err);
  EXPECT_EQ(chunks, 2);
  auto m = s.client();
  int busy = -1;
  for (int i = 0; i < 500 && (busy = metric(m, "slots_busy")) != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(busy, 0);
  // The slot serves the next request.
  EXPECT_EQ(post_ok(m, "/v1/completions",
                    {{"prompt", "The"}, {"max_tokens", 4}})["usage"]["completion_tokens"],
            4);
}

TEST(Serve, BurstPastTheQueueGets503AndLeaksNoSlot) {
  ServerOptions o = options(1);
  o.max_queue = 1;
  Running s(o);
  std::vector<std::future<int>> statuses;
  for (int i = 0; i < 8; ++i)
    statuses.push_back(std::async(std::launch::async, [&] {
      auto c = s.client();
      auto r =
          c.Post("/v1/completions", R"({"prompt": "The", "max_tokens": 200, "temperature": 0})",
                 "application/json");
      if (!r) return -1;
      if (r->status == 503) expect_error_shape(json::parse(r->body), "unavailable_error");
      return r->status;
    }));
  int ok = 0, busy = 0;
  for (auto& f : statuses) {
    const int st = f.get();
    EXPECT_TRUE(st == 200 || st == 503) << st;
    ok += st == 200;
    busy += st == 503;
  }
  EXPECT_GE(ok, 1);
  std::printf("burst of 8 on 1 slot + queue 1: %d served, %d refused with 503\n", ok, busy);
  auto c = s.client();
  EXPECT_EQ(metric(c, "slots_busy"), 0);
  EXPECT_EQ(metric(c, "queue_depth"), 0);
  EXPECT_EQ(metric(c, "requests_rejected_total"), busy);
}

TEST(SlotPool, QueueBoundAndPrefixChoice) {
  SessionParams sp;
  sp.n_ctx = 64;
  sp.n_threads = 1;
  SlotPool pool(tiny(), sp, 2, 0);
  const std::vector<int32_t> a = {1, 5, 6, 7}, b = {1, 9, 9};
  {
    auto la = pool.acquire(a);
    la->session().evaluate(a);
    auto lb = pool.acquire(b);
    EXPECT_NE(la->index(), lb->index());
    EXPECT_EQ(pool.busy(), 2);
    try {
      pool.acquire(a);
      ADD_FAILURE() << "a third request with no queue must be refused";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 503);
    }
  }
  EXPECT_EQ(pool.busy(), 0);
  // The slot holding a's tokens is chosen for a prompt that starts with them.
  const std::vector<int32_t> a2 = {1, 5, 6, 7, 8};
  auto l = pool.acquire(a2);
  EXPECT_EQ(SlotPool::common_prefix(l->session().tokens(), a2), 4u);
}

TEST(Serve, RandomBodiesNeverCrash) {
  // A bounded fuzz of the request parser over HTTP: mutated valid bodies and random bytes to
  // every POST endpoint; every reply is 200 or a 4xx with the error shape.
  auto c = shared().client();
  std::mt19937 rng(1234);
  const std::vector<std::string> seeds = {
      R"({"prompt": "The", "max_tokens": 2, "temperature": 0})",
      R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "stream": true})",
      R"({"content": "hello world", "with_pieces": true})",
      R"({"tokens": [1, 2, 3]})",
  };
  const std::vector<std::string> paths = {"/v1/completions", "/v1/chat/completions", "/tokenize",
                                          "/detokenize"};
  const std::string alphabet = "{}[]\":,0123456789-.eE truefalsnul\\u\x80\xff";
  for (int i = 0; i < 200; ++i) {
    std::string body = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const size_t at = rng() % body.size();
      switch (rng() % 3) {
      case 0:
        body[at] = alphabet[rng() % alphabet.size()];
        break;
      case 1:
        body.erase(at, 1 + rng() % 4);
        break;
      default:
        body.insert(at, 1, alphabet[rng() % alphabet.size()]);
      }
    }
    const std::string& path = paths[rng() % paths.size()];
    auto r = c.Post(path, body, "application/json");
    ASSERT_TRUE(r) << "no reply to " << body;
    if (r->status == 200) continue;
    EXPECT_TRUE(r->status == 400) << r->status << " for " << path << " " << body;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r->body;
    expect_error_shape(j, "invalid_request_error");
  }
  EXPECT_EQ(metric(c, "slots_busy"), 0);
}

TEST(ServeCli, SigtermStopsCleanly) {
  test::TempDir dir;
  const std::string err_path = dir.file("stderr");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  const std::string bin = test::bitnet_binary();
  std::vector<std::string> args = {bin, "serve", "-m", tiny_model(), "--port",
                                   "0", "-t",    "1",  "-c",         "256"};
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  int port = 0;
  for (int i = 0; i < 1000 && port == 0; ++i) {
    const std::string err = test::slurp(err_path);
    const size_t at = err.find("listening on http://127.0.0.1:");
    if (at != std::string::npos && err.find('\n', at) != std::string::npos)
      port = std::stoi(err.substr(at + 30));
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(port, 0) << test::slurp(err_path);
  httplib::Client c("127.0.0.1", port);
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  // A stream in flight when SIGTERM arrives still ends properly.
  auto stream = std::async(std::launch::async, [port] {
    httplib::Client cc("127.0.0.1", port);
    return cc.Post("/v1/completions", R"({"prompt": "The", "max_tokens": 100, "stream": true})",
                   "application/json");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << test::slurp(err_path);
  EXPECT_NE(test::slurp(err_path).find("SIGTERM: stopping"), std::string::npos);
  auto r = stream.get();
  if (r) {
    EXPECT_TRUE(r->status == 200 || r->status == 503) << r->status;
  }
}

} // namespace
} // namespace bitnet::serve
