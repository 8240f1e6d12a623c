#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bitnet/error.hpp"
#include "tokenizer/tokenizer.hpp"

namespace bitnet::tokenizer {

namespace {

// llama.cpp's trim(): ASCII white space at both ends.
std::string_view trim(std::string_view s) {
  const auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
  };
  while (!s.empty() && space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && space(s.back()))
    s.remove_suffix(1);
  return s;
}

} // namespace

ChatTemplate ChatTemplate::from_gguf(const gguf::File& file) {
  const auto tmpl = file.find_string("tokenizer.chat_template");
  if (!tmpl) {
    spdlog::debug("no tokenizer.chat_template: using the 'bitnet' chat format");
    return ChatTemplate("bitnet");
  }
  // The same test and order as llama_chat_apply_template_internal: the Llama-3 branch is
  // checked before the "BITNET" one.
  if (tmpl->find("<|start_header_id|>") != std::string::npos &&
      tmpl->find("<|end_header_id|>") != std::string::npos) {
    return ChatTemplate("llama3");
  }
  if (tmpl->find("BITNET") == std::string::npos &&
      (tmpl->find("| capitalize") == std::string::npos ||
       tmpl->find("<|eot_id|>") == std::string::npos)) {
    spdlog::info("tokenizer.chat_template is not a known format: using the 'bitnet' chat format");
  }
  return ChatTemplate("bitnet");
}

ChatTemplate ChatTemplate::by_name(std::string_view name) {
  if (name == "bitnet" || name == "llama3") return ChatTemplate(std::string(name));
  throw Error(ErrorKind::invalid_argument,
              fmt::format("unknown chat template '{}' (bitnet, llama3)", name));
}

std::string ChatTemplate::render(std::span<const Message> messages,
                                 bool add_generation_prompt) const {
  std::string out;
  if (name_ == "llama3") {
    for (const Message& m : messages) {
      out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n";
      out += trim(m.content);
      out += "<|eot_id|>";
    }
    if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    return out;
  }
  // bitnet.cpp writes "Assistant: " after every user message; here the last one gets it
  // only when a generation prompt is asked for.
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    if (m.role == "system") {
      out += "System: " + m.content;
    } else if (m.role == "user") {
      out += "User: " + m.content + "<|eot_id|>";
      if (i + 1 < messages.size() || add_generation_prompt) out += "Assistant: ";
    } else {
      out += m.content;
    }
  }
  return out;
}

} // namespace bitnet::tokenizer
