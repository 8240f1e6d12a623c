#include "serve_api.hpp"

#include <charconv>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace bitnet::serve {

namespace {

using nlohmann::json;

ApiError bad(const std::string& message) {
  return ApiError(400, message);
}

const json* field(const json& body, const char* key) {
  const auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

bool get_bool(const json& body, const char* key, bool fallback) {
  const json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_boolean()) throw bad(fmt::format("'{}' must be a boolean", key));
  return v->get<bool>();
}

double get_number(const json& body, const char* key, double fallback, double lo, double hi) {
  const json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_number()) throw bad(fmt::format("'{}' must be a number", key));
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < lo || d > hi)
    throw bad(fmt::format("'{}' must be between {} and {}", key, lo, hi));
  return d;
}

// An integer: a JSON integer, or a float with an integral value (some clients send 16.0).
std::optional<int64_t> get_int(const json& body, const char* key, int64_t lo, int64_t hi) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  int64_t i = 0;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() &&
        v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw bad(fmt::format("'{}' must be between {} and {}", key, lo, hi));
    i = v->get<int64_t>();
  } else if (v->is_number_float()) {
    const double d = v->get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15)
      throw bad(fmt::format("'{}' must be an integer", key));
    i = static_cast<int64_t>(d);
  } else {
    throw bad(fmt::format("'{}' must be an integer", key));
  }
  if (i < lo || i > hi) throw bad(fmt::format("'{}' must be between {} and {}", key, lo, hi));
  return i;
}

std::vector<int32_t> get_ids(const json& v, const char* key) {
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (const json& item : v) {
    if (!item.is_number_integer() ||
        (item.is_number_unsigned() && item.get<uint64_t>() > 0x7fffffffu) ||
        item.get<int64_t>() < 0 || item.get<int64_t>() > 0x7fffffff)
      throw bad(fmt::format("'{}' must be an array of token ids (non-negative integers)", key));
    ids.push_back(static_cast<int32_t>(item.get<int64_t>()));
  }
  return ids;
}

// A message's content: a string, or an array of {"type": "text", "text": ...} parts.
std::string get_content(const json& msg, size_t index) {
  const json* c = field(msg, "content");
  if (!c) return "";
  if (c->is_string()) return c->get<std::string>();
  if (c->is_array()) {
    std::string text;
    for (const json& part : *c) {
      if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
          !part.contains("text") || !part["text"].is_string())
        throw bad(fmt::format("messages[{}].content: only text parts are supported", index));
      text += part["text"].get<std::string>();
    }
    return text;
  }
  throw bad(fmt::format("messages[{}].content must be a string or an array of text parts", index));
}

std::vector<ChatMessage> get_messages(const json& body) {
  const json* m = field(body, "messages");
  if (!m) throw bad("'messages' is required");
  if (!m->is_array() || m->empty()) throw bad("'messages' must be a non-empty array");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < m->size(); ++i) {
    const json& msg = (*m)[i];
    if (!msg.is_object()) throw bad(fmt::format("messages[{}] must be an object", i));
    const json* role = field(msg, "role");
    if (!role || !role->is_string())
      throw bad(fmt::format("messages[{}].role must be a string", i));
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system"; // the OpenAI API's newer name for it
    if (r != "system" && r != "user" && r != "assistant")
      throw bad(fmt::format("messages[{}].role '{}' is not one of system, user, assistant", i,
                            role->get<std::string>()));
    out.push_back({std::move(r), get_content(msg, i)});
  }
  return out;
}

std::vector<std::string> get_stop(const json& body) {
  const json* s = field(body, "stop");
  std::vector<std::string> out;
  if (!s) return out;
  if (s->is_string()) {
    if (!s->get<std::string>().empty()) out.push_back(s->get<std::string>());
    return out;
  }
  if (!s->is_array() || s->size() > 16)
    throw bad("'stop' must be a string or an array of at most 16 strings");
  for (const json& item : *s) {
    if (!item.is_string()) throw bad("'stop' must be a string or an array of strings");
    if (!item.get<std::string>().empty()) out.push_back(item.get<std::string>());
  }
  return out;
}

// Fields of the OpenAI API (and llama-server's grammar ones) that would change what comes
// back, which this server does not implement: a 400 naming them, not a reply that silently
// lacks them. Their neutral values (null, false, 0, "text", no tools) are accepted.
void reject_unsupported(const json& body) {
  const auto unsupported = [](const char* what) {
    return bad(fmt::format("{} is not supported by this server", what));
  };
  if (const json* f = field(body, "response_format");
      f && !(f->is_object() && f->value("type", json()) == "text"))
    throw unsupported("'response_format' other than {\"type\": \"text\"}");
  if (const json* f = field(body, "tools"); f && !(f->is_array() && f->empty()))
    throw unsupported("'tools' (function calling)");
  if (const json* f = field(body, "tool_choice"); f && *f != "none" && *f != "auto")
    throw unsupported("'tool_choice' (function calling)");
  if (const json* f = field(body, "logprobs"); f && *f != false && *f != 0)
    throw unsupported("'logprobs'");
  if (const json* f = field(body, "top_logprobs"); f && *f != 0)
    throw unsupported("'top_logprobs'");
  if (const json* f = field(body, "echo"); f && *f != false) throw unsupported("'echo'");
  if (const json* f = field(body, "suffix"); f && *f != "") throw unsupported("'suffix'");
  if (const json* f = field(body, "best_of"); f && *f != 1)
    throw unsupported("'best_of' other than 1");
  for (const char* key : {"grammar", "json_schema"})
    if (field(body, key)) throw unsupported(fmt::format("'{}'", key).c_str());
}

} // namespace

Json error_body(int status, std::string_view message, std::string_view type) {
  Json e;
  e["message"] = std::string(message);
  e["type"] = std::string(type);
  e["param"] = nullptr;
  e["code"] = status;
  return Json{{"error", std::move(e)}};
}

nlohmann::json parse_object(std::string_view body) {
  json v = json::parse(body.begin(), body.end(), nullptr, false);
  if (v.is_discarded()) throw bad("the request body is not valid JSON");
  if (!v.is_object()) throw bad("the request body must be a JSON object");
  return v;
}

CompletionRequest parse_completion(const nlohmann::json& body, bool chat) {
  CompletionRequest r;
  r.chat = chat;
  reject_unsupported(body);
  if (chat) {
    r.messages = get_messages(body);
  } else {
    const json* p = field(body, "prompt");
    if (!p) throw bad("'prompt' is required");
    if (p->is_string()) {
      r.prompt = p->get<std::string>();
    } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
      r.prompt = (*p)[0].get<std::string>();
    } else if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
      r.prompt_ids = get_ids(*p, "prompt");
      r.prompt_is_ids = true;
    } else {
      throw bad("'prompt' must be a string or an array of token ids (one prompt per request)");
    }
  }
  r.stream = get_bool(body, "stream", false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) throw bad("'stream_options' must be an object");
    r.include_usage = get_bool(*so, "include_usage", false);
  }
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  std::optional<int64_t> max_tokens = get_int(body, "max_tokens", -1, kIntMax);
  if (const auto mct = get_int(body, "max_completion_tokens", -1, kIntMax)) max_tokens = mct;
  if (max_tokens) r.max_tokens = static_cast<int32_t>(*max_tokens);
  if (const auto n = get_int(body, "n", 1, kIntMax); n && *n != 1)
    throw bad("only 'n': 1 is supported");

  SamplerParams& s = r.sampler;
  s.temp = static_cast<float>(get_number(body, "temperature", s.temp, 0.0, 100.0));
  s.top_p = static_cast<float>(get_number(body, "top_p", s.top_p, 0.0, 1.0));
  s.min_p = static_cast<float>(get_number(body, "min_p", s.min_p, 0.0, 1.0));
  if (const auto k = get_int(body, "top_k", -1, kIntMax)) s.top_k = static_cast<int32_t>(*k);
  s.repeat_penalty =
      static_cast<float>(get_number(body, "repeat_penalty", s.repeat_penalty, 0.0, 100.0));
  if (const auto seed = get_int(body, "seed", -1, std::numeric_limits<int64_t>::max());
      seed && *seed >= 0) {
    s.seed = static_cast<uint64_t>(*seed);
    r.seed_given = true;
  }
  s.presence_penalty = static_cast<float>(get_number(body, "presence_penalty", 0.0, -2.0, 2.0));
  s.frequency_penalty = static_cast<float>(get_number(body, "frequency_penalty", 0.0, -2.0, 2.0));
  if (const json* bias = field(body, "logit_bias")) {
    // OpenAI's shape: {"token id": bias in [-100, 100]}; -100 bans the token.
    if (!bias->is_object() || bias->size() > 1024)
      throw bad("'logit_bias' must be an object of at most 1024 \"token id\": bias pairs");
    for (const auto& [key, value] : bias->items()) {
      int64_t id = -1;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (ec != std::errc() || end != key.data() + key.size() || id < 0 || id > 0x7fffffff)
        throw bad(fmt::format("'logit_bias' key '{}' is not a token id", key));
      if (!value.is_number() || !std::isfinite(value.get<double>()) ||
          std::fabs(value.get<double>()) > 100.0)
        throw bad("'logit_bias' values must be numbers between -100 and 100");
      const double b = value.get<double>();
      s.logit_bias.emplace_back(static_cast<int32_t>(id),
                                b <= -100.0 ? -std::numeric_limits<float>::infinity()
                                            : static_cast<float>(b));
    }
  }
  r.stop = get_stop(body);
  r.cache_prompt = get_bool(body, "cache_prompt", true);
  r.ignore_eos = get_bool(body, "ignore_eos", false);
  return r;
}

TokenizeRequest parse_tokenize(const nlohmann::json& body) {
  TokenizeRequest r;
  const json* c = field(body, "content");
  if (!c || !c->is_string()) throw bad("'content' must be a string");
  r.content = c->get<std::string>();
  r.add_special = get_bool(body, "add_special", false);
  r.parse_special = get_bool(body, "parse_special", true);
  r.with_pieces = get_bool(body, "with_pieces", false);
  return r;
}

std::vector<int32_t> parse_detokenize(const nlohmann::json& body) {
  const json* t = field(body, "tokens");
  if (!t || !t->is_array()) throw bad("'tokens' must be an array of token ids");
  return get_ids(*t, "tokens");
}

const char* finish_reason(StopReason reason) noexcept {
  switch (reason) {
  case StopReason::eog:
  case StopReason::stop_string:
  case StopReason::callback:
  case StopReason::interrupted:
    return "stop";
  case StopReason::n_predict:
  case StopReason::ctx_full:
    return "length";
  }
  return "stop";
}

Json usage_json(int32_t prompt_tokens, int32_t completion_tokens) {
  return Json{{"prompt_tokens", prompt_tokens},
              {"completion_tokens", completion_tokens},
              {"total_tokens", prompt_tokens + completion_tokens}};
}

namespace {

Json reply_head(const CompletionRequest& req, const ReplyMeta& meta, bool chunk) {
  Json j;
  j["id"] = meta.id;
  j["object"] =
      req.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  j["created"] = meta.created;
  j["model"] = meta.model;
  return j;
}

Json finish_json(const char* finish) {
  return finish ? Json(finish) : Json(nullptr);
}

} // namespace

Json completion_reply(const CompletionRequest& req, const ReplyMeta& meta, std::string_view text,
                      const char* finish, int32_t prompt_tokens, int32_t completion_tokens) {
  Json j = reply_head(req, meta, false);
  Json choice;
  choice["index"] = 0;
  if (req.chat)
    choice["message"] = Json{{"role", "assistant"}, {"content", std::string(text)}};
  else
    choice["text"] = std::string(text);
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_json(finish);
  j["choices"] = Json::array({std::move(choice)});
  j["usage"] = usage_json(prompt_tokens, completion_tokens);
  return j;
}

Json stream_chunk(const CompletionRequest& req, const ReplyMeta& meta, std::string_view text,
                  const char* finish, bool role_only) {
  Json j = reply_head(req, meta, true);
  Json choice;
  choice["index"] = 0;
  if (req.chat) {
    if (role_only)
      choice["delta"] = Json{{"role", "assistant"}, {"content", ""}};
    else if (finish && text.empty())
      choice["delta"] = Json::object();
    else
      choice["delta"] = Json{{"content", std::string(text)}};
  } else {
    choice["text"] = std::string(text);
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_json(finish);
  j["choices"] = Json::array({std::move(choice)});
  return j;
}

Json usage_chunk(const CompletionRequest& req, const ReplyMeta& meta, int32_t prompt_tokens,
                 int32_t completion_tokens) {
  Json j = reply_head(req, meta, true);
  j["choices"] = Json::array();
  j["usage"] = usage_json(prompt_tokens, completion_tokens);
  return j;
}

std::string dump(const Json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace bitnet::serve
