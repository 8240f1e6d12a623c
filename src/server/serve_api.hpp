// The OpenAI / llama-server request and response shapes of `bitnet serve`: request bodies
// parsed and checked into plain structs (every malformed body is an ApiError, never a crash),
// replies and stream chunks built as JSON. No HTTP here, so it is tested and fuzzed alone.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitnet/generate.hpp"
#include "bitnet/model.hpp"

namespace bitnet::serve {

using Json = nlohmann::ordered_json;

// A request the server refuses: HTTP status, OpenAI error type and a message for the client.
class ApiError : public std::runtime_error {
public:
  ApiError(int status, const std::string& message, std::string type = "invalid_request_error")
      : std::runtime_error(message), status_(status), type_(std::move(type)) {}
  int status() const noexcept { return status_; }
  const std::string& type() const noexcept { return type_; }

private:
  int status_;
  std::string type_;
};

// {"error": {"message", "type", "param": null, "code"}} as the OpenAI API returns it.
Json error_body(int status, std::string_view message, std::string_view type);

// The body as a JSON object; ApiError(400) saying why when it is not one.
nlohmann::json parse_object(std::string_view body);

// POST /v1/completions and /v1/chat/completions, checked field by field.
struct CompletionRequest {
  bool chat = false;
  std::vector<ChatMessage> messages; // chat
  std::string prompt;                // completions: text ...
  std::vector<int32_t> prompt_ids;   // ... or token ids
  bool prompt_is_ids = false;
  bool stream = false;
  bool include_usage = false;        // stream_options.include_usage
  std::optional<int32_t> max_tokens; // max_tokens or max_completion_tokens; -1 = no limit
  SamplerParams sampler;             // llama-server's defaults for fields not given
  bool seed_given = false;
  std::vector<std::string> stop;
  bool cache_prompt = true; // reuse a slot's cached prefix (llama-server's field)
  bool ignore_eos = false;  // llama-server's field: generate through end-of-generation tokens
};
CompletionRequest parse_completion(const nlohmann::json& body, bool chat);

// POST /tokenize {"content", "add_special", "parse_special", "with_pieces"} and
// POST /detokenize {"tokens"}.
struct TokenizeRequest {
  std::string content;
  bool add_special = false;
  bool parse_special = true;
  bool with_pieces = false;
};
TokenizeRequest parse_tokenize(const nlohmann::json& body);
std::vector<int32_t> parse_detokenize(const nlohmann::json& body);

// "stop" (an end-of-generation token or a stop string) or "length".
const char* finish_reason(StopReason reason) noexcept;

// What the replies share: id ("cmpl-…" / "chatcmpl-…"), creation time and model name.
struct ReplyMeta {
  std::string id;
  int64_t created = 0;
  std::string model;
};
Json usage_json(int32_t prompt_tokens, int32_t completion_tokens);
Json completion_reply(const CompletionRequest& req, const ReplyMeta& meta, std::string_view text,
                      const char* finish, int32_t prompt_tokens, int32_t completion_tokens);
// One stream chunk: `text` as choices[0].text / delta.content; `finish` null until the last;
// `role_only` the chat stream's first chunk (delta {"role": "assistant", "content": ""}).
Json stream_chunk(const CompletionRequest& req, const ReplyMeta& meta, std::string_view text,
                  const char* finish, bool role_only = false);
// The stream's usage chunk (stream_options.include_usage): choices [] and usage.
Json usage_chunk(const CompletionRequest& req, const ReplyMeta& meta, int32_t prompt_tokens,
                 int32_t completion_tokens);

// JSON text; model text may hold invalid UTF-8 (a token can be part of a character), which
// becomes U+FFFD instead of failing.
std::string dump(const Json& value);

} // namespace bitnet::serve
