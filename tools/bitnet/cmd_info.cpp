// `bitnet info FILE [--json]` (or -m FILE): what a GGUF file holds and whether this build can
// run it. Every key, name and string from the file is escaped before it reaches the terminal.
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "bitnet/error.hpp"
#include "bitnet/gguf.hpp"
#include "bitnet/system.hpp"
#include "cli_common.hpp"
#include "commands.hpp"

namespace bitnet::cli {

namespace {

constexpr std::size_t kMaxTextValue = 60; // longer strings are cut in the text view

struct InfoArgs {
  std::string model; // -m/--model
  std::string file;  // positional, as quantize takes its files
  bool json = false;
};

// Hyper-parameters shown in the summary, as <arch>.<suffix> keys.
constexpr std::pair<const char*, const char*> kHyperParameters[] = {
    {"n_embd", "embedding_length"},
    {"n_layer", "block_count"},
    {"n_head", "attention.head_count"},
    {"n_head_kv", "attention.head_count_kv"},
    {"n_ff", "feed_forward_length"},
    {"n_ctx_train", "context_length"},
    {"n_vocab", "vocab_size"},
    {"n_rot", "rope.dimension_count"},
    {"rope_freq_base", "rope.freq_base"},
    {"rms_eps", "attention.layer_norm_rms_epsilon"},
};

// Elements in every tensor, as llama.cpp's "model params" (llama_model_n_params) counts them.
uint64_t parameter_count(const GgufFile& f) {
  uint64_t n = 0;
  for (const GgufTensor& t : f.tensors()) {
    uint64_t elements = 1;
    for (const uint64_t d : t.shape)
      elements *= d;
    n += elements;
  }
  return n;
}

// llama.cpp's print_meta format: "2.41 B", "5.42 M".
std::string parameter_text(uint64_t n) {
  const auto v = static_cast<double>(n);
  if (v >= 1e12) return fmt::format("{:.2f} T", v / 1e12);
  if (v >= 1e9) return fmt::format("{:.2f} B", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.2f} M", v / 1e6);
  return fmt::format("{:.2f} K", v / 1e3);
}

std::string shape_string(const std::vector<uint64_t>& ne) {
  std::string s = "[";
  for (std::size_t i = 0; i < ne.size(); ++i)
    s += fmt::format("{}{}", i ? ", " : "", ne[i]);
  return s + "]";
}

std::string value_text(const GgufValue& v) {
  switch (v.type()) {
  case GgufType::string: {
    const std::string& s = v.as_string();
    const std::string shown = s.size() > kMaxTextValue ? s.substr(0, kMaxTextValue) + "…" : s;
    return dump(shown);
  }
  case GgufType::array:
    return fmt::format("[{} × {}]", to_string(v.elem_type()), v.size());
  case GgufType::boolean:
    return v.as_bool() ? "true" : "false";
  case GgufType::float32:
  case GgufType::float64:
    return fmt::format("{:g}", v.as_float());
  case GgufType::int8:
  case GgufType::int16:
  case GgufType::int32:
  case GgufType::int64:
    return fmt::format("{}", v.as_int());
  default:
    return fmt::format("{}", v.as_uint());
  }
}

Json value_json(const GgufValue& v) {
  switch (v.type()) {
  case GgufType::string:
    return v.as_string();
  case GgufType::array:
    return {{"type", to_string(v.elem_type())}, {"count", v.size()}};
  case GgufType::boolean:
    return v.as_bool();
  case GgufType::float32:
  case GgufType::float64:
    return number(v.as_float());
  case GgufType::int8:
  case GgufType::int16:
  case GgufType::int32:
  case GgufType::int64:
    return v.as_int();
  default:
    return v.as_uint();
  }
}

struct TokenizerSummary {
  std::optional<std::string> model;
  std::optional<std::string> pre;
  std::optional<uint64_t> vocab_size;
  std::optional<uint64_t> bos, eos, eot;
  bool eot_from_text = false; // no eot_token_id key: found <|eot_id|> by text, as llama.cpp
  bool chat_template = false;
};

// Reads the tokenizer keys without building a tokenizer, so a file this build cannot run
// (or whose tokenizer is broken) is still described. Ids of the wrong type are omitted.
TokenizerSummary summarize_tokenizer(const GgufFile& f) {
  TokenizerSummary t;
  const auto str = [&](const char* key) -> std::optional<std::string> {
    const auto v = f.find(key);
    if (!v || v->type() != GgufType::string) return std::nullopt;
    return v->as_string();
  };
  const auto id = [&](const char* key) -> std::optional<uint64_t> {
    const auto v = f.find(key);
    if (!v) return std::nullopt;
    try {
      return v->as_uint();
    } catch (const Error&) {
      return std::nullopt; // not a non-negative integer: shown as absent
    }
  };
  t.model = str("tokenizer.ggml.model");
  t.pre = str("tokenizer.ggml.pre");
  t.bos = id("tokenizer.ggml.bos_token_id");
  t.eos = id("tokenizer.ggml.eos_token_id");
  t.eot = id("tokenizer.ggml.eot_token_id");
  t.chat_template = str("tokenizer.chat_template").has_value();
  const auto tokens = f.find("tokenizer.ggml.tokens");
  if (tokens && tokens->type() == GgufType::array) {
    t.vocab_size = tokens->size();
    if (!t.eot && tokens->elem_type() == GgufType::string) {
      for (std::size_t i = 0; i < tokens->size(); ++i) {
        if ((*tokens)[i].as_string() == "<|eot_id|>") {
          t.eot = i;
          t.eot_from_text = true;
          break;
        }
      }
    }
  }
  return t;
}

template <typename T> std::string opt_text(const std::optional<T>& v) {
  return v ? fmt::format("{}", *v) : "(absent)";
}

template <typename T> Json opt_json(const std::optional<T>& v) {
  return v ? Json(*v) : Json();
}

void print_text(const GgufFile& f, const TokenizerSummary& tok,
                const std::optional<std::string>& reason,
                const std::map<std::string, std::pair<std::size_t, uint64_t>>& by_type) {
  const std::string arch = f.architecture();
  print_stdout("file:          {}\n", f.path());
  print_stdout("size:          {} bytes ({:.2f} MiB), GGUF v{}, alignment {}, data at byte {}\n",
               f.file_size(), static_cast<double>(f.file_size()) / (1 << 20), f.version(),
               f.alignment(), f.data_offset());
  print_stdout("architecture:  {}\n", arch.empty() ? "(absent)" : escape_text(arch));
  if (const auto name = f.find("general.name")) {
    print_stdout("name:          {}\n", value_text(*name));
  }
  const uint64_t n_params = parameter_count(f);
  print_stdout("params:        {} ({})\n", parameter_text(n_params), n_params);
  print_stdout("runnable:      {}\n", reason ? "no: " + escape_text(*reason) : "yes");
  print_stdout("kernels:       {}\n", current_isa());

  print_stdout("\nhyper-parameters:\n");
  for (const auto& [label, suffix] : kHyperParameters) {
    const auto v = f.find(arch + "." + suffix);
    print_stdout("  {:<15} {}\n", label, v ? value_text(*v) : "(absent)");
  }

  print_stdout("\ntokenizer:\n");
  print_stdout("  {:<15} {}\n", "model", tok.model ? escape_text(*tok.model) : "(absent)");
  print_stdout("  {:<15} {}\n", "pre", tok.pre ? escape_text(*tok.pre) : "(absent)");
  print_stdout("  {:<15} {}\n", "vocab size", opt_text(tok.vocab_size));
  print_stdout("  {:<15} {}\n", "bos", opt_text(tok.bos));
  print_stdout("  {:<15} {}\n", "eos", opt_text(tok.eos));
  print_stdout("  {:<15} {}{}\n", "eot", opt_text(tok.eot),
               tok.eot_from_text ? " (<|eot_id|> by token text)" : "");
  print_stdout("  {:<15} {}\n", "chat template", tok.chat_template ? "present" : "absent");

  print_stdout("\nmetadata ({} keys):\n", f.metadata().size());
  for (const GgufEntry& kv : f.metadata()) {
    print_stdout("  {:<45} {}\n", escape_text(kv.key), value_text(kv.value));
  }

  print_stdout("\nbytes by type:\n");
  for (const auto& [type, count_bytes] : by_type) {
    print_stdout("  {:<6} {:>5} tensors {:>14} bytes ({:.2f} MiB)\n", type, count_bytes.first,
                 count_bytes.second, static_cast<double>(count_bytes.second) / (1 << 20));
  }

  print_stdout("\ntensors ({}):\n", f.tensors().size());
  print_stdout("  {:<40} {:<6} {:<22} {:>12} {:>12}\n", "name", "type", "shape", "bytes", "offset");
  for (const GgufTensor& t : f.tensors()) {
    print_stdout("  {:<40} {:<6} {:<22} {:>12} {:>12}\n", escape_text(t.name), t.type,
                 shape_string(t.shape), t.bytes, t.offset);
  }
}

Json make_json(const GgufFile& f, const TokenizerSummary& tok,
               const std::optional<std::string>& reason,
               const std::map<std::string, std::pair<std::size_t, uint64_t>>& by_type) {
  Json metadata = Json::object();
  for (const GgufEntry& kv : f.metadata())
    metadata[std::string(kv.key)] = value_json(kv.value);
  Json tensors = Json::array();
  for (const GgufTensor& t : f.tensors()) {
    tensors.push_back({{"name", t.name},
                       {"type", t.type},
                       {"shape", t.shape},
                       {"bytes", t.bytes},
                       {"offset", t.offset}});
  }
  Json bytes = Json::object();
  for (const auto& [type, count_bytes] : by_type)
    bytes[type] = count_bytes.second;
  return {
      {"file", f.path()},
      {"file_size", f.file_size()},
      {"gguf_version", f.version()},
      {"alignment", f.alignment()},
      {"architecture", f.architecture()},
      {"n_params", parameter_count(f)},
      {"runnable", !reason},
      {"not_runnable_reason", opt_json(reason)},
      {"kernels", current_isa()},
      {"tokenizer",
       {{"model", opt_json(tok.model)},
        {"pre", opt_json(tok.pre)},
        {"vocab_size", opt_json(tok.vocab_size)},
        {"bos", opt_json(tok.bos)},
        {"eos", opt_json(tok.eos)},
        {"eot", opt_json(tok.eot)},
        {"chat_template", tok.chat_template}}},
      {"metadata", std::move(metadata)},
      {"bytes_by_type", std::move(bytes)},
      {"tensors", std::move(tensors)},
  };
}

int run_info(const InfoArgs& args) {
  if (!args.model.empty() && !args.file.empty())
    throw Error(ErrorKind::invalid_argument,
                "give the model once: as FILE or with -m/--model, not both");
  if (args.model.empty() && args.file.empty())
    throw Error(ErrorKind::invalid_argument, "no model: give FILE or -m/--model FILE");
  const GgufFile f = GgufFile::open(args.model.empty() ? args.file : args.model);
  const TokenizerSummary tok = summarize_tokenizer(f);
  const std::optional<std::string> reason = f.cannot_run_reason();
  std::map<std::string, std::pair<std::size_t, uint64_t>> by_type;
  for (const GgufTensor& t : f.tensors()) {
    auto& entry = by_type[t.type];
    ++entry.first;
    entry.second += t.bytes;
  }
  if (args.json) {
    write_stdout(dump(make_json(f, tok, reason, by_type)) + "\n");
  } else {
    print_text(f, tok, reason, by_type);
  }
  return 0;
}

} // namespace

CommandFn add_info(CLI::App& root) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* cmd = root.add_subcommand(
      "info", "Show a GGUF file's metadata, tensors and whether this build can run it");
  cmd->add_option("file", args->file, "GGUF model file");
  cmd->add_option("-m,--model", args->model, "GGUF model file (instead of FILE)");
  cmd->add_flag("--json", args->json, "Print one JSON object instead of the text view");
  return [args] { return run_info(*args); };
}

} // namespace bitnet::cli
