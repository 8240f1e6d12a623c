#include "cli_common.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "bitnet/build_info.hpp"

namespace bitnet::cli {

std::string demo_model_path() {
  // Only the binary of the build tree defaults to the demo model: an installed copy must not
  // depend on a source tree that may be gone or changed.
  std::error_code ec;
  if (!std::filesystem::equivalent("/proc/self/exe", BITNET_BUILD_BINARY, ec)) return {};
  return BITNET_DEMO_MODEL;
}

std::string resolve_model_path(const std::string& given) {
  if (!given.empty()) return given;
  const std::string demo = demo_model_path();
  if (demo.empty() || !std::filesystem::exists(demo)) {
    throw Error(ErrorKind::invalid_argument,
                demo.empty() ? std::string("no model given: pass -m/--model FILE.gguf (the demo "
                                           "model is the default of the build tree's binary only)")
                             : "no model given and the demo model " + demo +
                                   " is missing: pass -m/--model FILE.gguf");
  }
  spdlog::info("no --model given: using the demo model {} (bitnet-tiny-brown, 5.4M parameters "
               "trained on the Brown corpus; a toy, not the 2B-4T model)",
               demo);
  return demo;
}

uint64_t peak_rss_bytes() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024; // Linux reports KiB
}

std::string read_file(const std::string& path) {
  if (path == "-") {
    std::ostringstream bytes;
    bytes << std::cin.rdbuf();
    if (std::cin.bad()) throw Error(ErrorKind::io, "cannot read stdin");
    return std::move(bytes).str();
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw Error(ErrorKind::io, "cannot read '" + path + "': it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::io, "cannot open '" + path + "'");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw Error(ErrorKind::io, "cannot read '" + path + "'");
  return std::move(bytes).str();
}

std::string read_prompt_file(const std::string& path) {
  std::string text = read_file(path);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

KvType parse_kv_type(std::string_view name) {
  if (name == "f16") return KvType::f16;
  if (name == "f32") return KvType::f32;
  throw Error(ErrorKind::invalid_argument,
              fmt::format("--kv-type: unknown type '{}' (f16 or f32)", name));
}

const char* to_string(KvType type) noexcept {
  return type == KvType::f16 ? "f16" : "f32";
}

HeadMode parse_head_mode(std::string_view name) {
  if (name == "screened") return HeadMode::screened;
  if (name == "exact") return HeadMode::exact;
  throw Error(ErrorKind::invalid_argument,
              fmt::format("--head: unknown mode '{}' (screened or exact)", name));
}

double decode_bytes_per_token(const Session& session, const Stats& stats) {
  const size_t n = stats.decode_ms_per_token.size();
  if (n == 0) return 0.0;
  const int64_t first_pos = int64_t{stats.n_past_start} + stats.n_prompt;
  double bytes = 0.0;
  for (size_t i = 0; i < n; ++i) {
    // Decode step i forwards generated token i; the head step after it gave token i + 1.
    const uint64_t head = i + 1 < stats.head_bytes.size() ? stats.head_bytes[i + 1] : 0;
    bytes += session.decode_step_bytes(first_pos + static_cast<int64_t>(i), head);
  }
  return bytes / static_cast<double>(n);
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

// "%10.2f ms / %5d <unit> (%8.2f ms per token, %8.2f tokens per second)" as llama.cpp prints it.
std::string rate_line(const char* label, double ms, int64_t n, const char* unit) {
  const double per = n > 0 ? ms / static_cast<double>(n) : 0.0;
  const double tps = ms > 0.0 ? 1e3 * static_cast<double>(n) / ms : 0.0;
  return fmt::format("bitnet_perf: {:>16} = {:10.2f} ms / {:5d} {:<6} ({:8.2f} ms per token, "
                     "{:8.2f} tokens per second)\n",
                     label, ms, n, unit, per, tps);
}

} // namespace

Json number(double v) {
  constexpr double kExactInt = 9007199254740992.0; // 2^53: every integer below is a double
  if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < kExactInt)
    return static_cast<int64_t>(v);
  return v;
}

Json numbers(const std::vector<double>& v) {
  Json out = Json::array();
  for (const double x : v)
    out.push_back(number(x));
  return out;
}

Json rounded(double v) {
  return number(std::isfinite(v) ? std::round(v * 1000.0) / 1000.0 : v);
}

Json decimal(float f) {
  return number(std::stod(fmt::format("{}", f)));
}

nlohmann::json parse_json(std::string_view text) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ...": the id is noise.
    const std::string_view what = e.what();
    const size_t id_end = what.find("] ");
    throw Error(ErrorKind::invalid_input,
                fmt::format("invalid JSON: {}",
                            id_end == std::string_view::npos ? what : what.substr(id_end + 2)));
  }
}

std::string dump(const Json& value, int indent) {
  return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

void print_timings(std::FILE* out, const Stats& stats, const RunReport& report) {
  std::string block = "\n";
  block += fmt::format("bitnet_perf: {:>16} = {:10.2f} ms\n", "load time", stats.load_ms);
  block += fmt::format("bitnet_perf: {:>16} = {:10.2f} ms\n", "tokenize time", stats.tokenize_ms);
  block += rate_line("prompt eval time", stats.prefill_ms, stats.n_prompt, "tokens");
  block += rate_line("eval time", stats.decode_ms,
                     static_cast<int64_t>(stats.decode_ms_per_token.size()), "runs");
  block += rate_line("sampling time", stats.sample_ms, stats.n_gen, "runs");
  block += fmt::format("bitnet_perf: {:>16} = {:10.2f} ms / {:5d} tokens\n", "total time",
                       report.total_ms, stats.n_prompt + stats.n_gen);
  block += fmt::format(
      "bitnet_perf: isa {} | threads {} | ctx {} | kv {} | head {} | peak memory {:.1f} MiB\n",
      current_isa(), report.session->n_threads(), report.session->n_ctx(),
      to_string(report.session->kv_type()), to_string(stats.head),
      static_cast<double>(peak_rss_bytes()) / (1024.0 * 1024.0));
  std::fputs(block.c_str(), out);
  std::fflush(out);
}

Json make_receipt(const Stats& stats, const RunReport& report) {
  const ModelInfo& info = *report.model;
  const GenerateParams& params = *report.params;
  const Session& session = *report.session;

  Json receipt;
  receipt["schema_version"] = kReceiptSchemaVersion;
  receipt["created_utc"] = utc_timestamp();
  receipt["bitnet_version"] = build::kVersion;
  receipt["build_commit"] = build::kCommit;
  receipt["build_type"] = build::kBuildType;
  receipt["compiler"] = build::kCompiler;
  receipt["cpu_info"] = cpu_description();
  receipt["isa"] = current_isa();
  receipt["n_threads"] = session.n_threads();
  receipt["n_ctx"] = session.n_ctx();
  receipt["n_batch"] = session.n_batch();
  receipt["n_ubatch"] = session.n_ubatch();
  receipt["kv_type"] = to_string(session.kv_type());

  Json model;
  model["path"] = info.path;
  model["name"] = info.name;
  model["size"] = info.file_size;
  model["architecture"] = info.architecture;
  model["n_params"] = info.n_params;
  model["n_vocab"] = info.n_vocab;
  model["n_ctx_train"] = info.n_ctx_train;
  model["weight_bytes_per_token"] = info.weight_bytes_per_token;
  receipt["model"] = std::move(model);

  Json sampling;
  sampling["n_predict"] = params.n_predict;
  sampling["temp"] = decimal(params.sampler.temp);
  sampling["top_k"] = params.sampler.top_k;
  sampling["top_p"] = decimal(params.sampler.top_p);
  sampling["min_p"] = decimal(params.sampler.min_p);
  sampling["repeat_penalty"] = decimal(params.sampler.repeat_penalty);
  sampling["repeat_last_n"] = params.sampler.repeat_last_n;
  sampling["presence_penalty"] = decimal(params.sampler.presence_penalty);
  sampling["frequency_penalty"] = decimal(params.sampler.frequency_penalty);
  Json bias = Json::array(); // [[token, bias], ...] in the order given; -inf as "-inf"
  for (const auto& [id, b] : params.sampler.logit_bias)
    bias.push_back({id, std::isinf(b) ? Json("-inf") : decimal(b)});
  sampling["logit_bias"] = std::move(bias);
  sampling["seed"] = params.sampler.seed;
  sampling["ignore_eos"] = params.ignore_eos;
  sampling["stop"] = params.stop;
  sampling["add_bos"] = params.add_bos ? Json(*params.add_bos) : Json();
  sampling["parse_special"] = params.parse_special;
  receipt["params"] = std::move(sampling);

  receipt["n_prompt"] = stats.n_prompt;
  receipt["n_gen"] = stats.n_gen;
  receipt["n_past"] = session.n_past();
  Json timings;
  timings["load"] = rounded(stats.load_ms);
  timings["tokenize"] = rounded(stats.tokenize_ms);
  timings["prefill"] = rounded(stats.prefill_ms);
  timings["decode"] = rounded(stats.decode_ms);
  timings["sample"] = rounded(stats.sample_ms);
  timings["total"] = rounded(report.total_ms);
  receipt["timings_ms"] = std::move(timings);
  receipt["prefill_tokens_per_s"] =
      rounded(stats.prefill_ms > 0 ? 1e3 * stats.n_prompt / stats.prefill_ms : 0.0);
  const auto n_decode = static_cast<double>(stats.decode_ms_per_token.size());
  receipt["decode_tokens_per_s"] =
      rounded(stats.decode_ms > 0 ? 1e3 * n_decode / stats.decode_ms : 0.0);
  Json per_token = Json::array();
  for (const double ms : stats.decode_ms_per_token)
    per_token.push_back(rounded(ms));
  receipt["decode_ms_per_token"] = std::move(per_token);
  receipt["embedded_per_step"] = stats.embedded_per_step;
  receipt["decode_bytes_per_token"] = rounded(decode_bytes_per_token(session, stats));
  receipt["head"] = to_string(stats.head);
  receipt["head_rows_per_step"] = stats.head_rows;
  receipt["prompt_ids"] = stats.prompt_ids;
  receipt["generated_ids"] = stats.generated_ids;
  receipt["stop_reason"] = to_string(stats.stop_reason);
  receipt["peak_rss_bytes"] = peak_rss_bytes();
  return receipt;
}

void write_json_file(const std::string& path, const Json& value) {
  OutputFile::write_all(path, dump(value, 2) + "\n");
}

namespace {

[[noreturn]] void stdout_failed(int err) {
  if (err == EPIPE) throw StdoutClosed();
  throw Error(ErrorKind::io, fmt::format("cannot write to stdout: {}", std::strerror(err)));
}

} // namespace

void write_stdout(std::string_view text) {
  if (!text.empty() && std::fwrite(text.data(), 1, text.size(), stdout) != text.size())
    stdout_failed(errno);
}

void flush_stdout() {
  if (std::fflush(stdout) != 0) stdout_failed(errno);
  if (std::ferror(stdout)) stdout_failed(EIO); // an earlier write failed and lost its errno
}

namespace {

std::atomic<bool> g_interrupted{false};
std::atomic<int> g_signal{0};

void on_interrupt(int sig) {
  if (g_interrupted.load() && sig == SIGINT) { // the second Ctrl-C: now
    remove_temporary_outputs();
    ::_exit(128 + SIGINT);
  }
  g_signal.store(sig);
  g_interrupted.store(true);
}

void on_cleanup(int sig) {
  remove_temporary_outputs();
  ::_exit(128 + sig);
}

void install(void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; // no SA_RESTART: a blocking read (the chat prompt) returns EINTR
  for (const int sig : {SIGINT, SIGTERM, SIGHUP})
    sigaction(sig, &sa, nullptr);
}

} // namespace

void install_interrupt_handlers() {
  install(on_interrupt);
}
void install_cleanup_handlers() {
  install(on_cleanup);
}
const std::atomic<bool>& interrupt_flag() {
  return g_interrupted;
}
int interrupt_signal() {
  return g_interrupted.load() ? g_signal.load() : 0;
}
void clear_interrupt() {
  g_interrupted.store(false);
  g_signal.store(0);
}
int interrupted_status() {
  return 128 + interrupt_signal();
}

void accumulate(Stats& total, const Stats& turn) {
  total.n_prompt += turn.n_prompt;
  total.n_gen += turn.n_gen;
  total.n_threads = turn.n_threads;
  total.n_ctx = turn.n_ctx;
  total.load_ms = turn.load_ms;
  total.tokenize_ms += turn.tokenize_ms;
  total.prefill_ms += turn.prefill_ms;
  total.decode_ms += turn.decode_ms;
  total.sample_ms += turn.sample_ms;
  total.total_ms += turn.total_ms;
  const auto append = [](auto& to, const auto& from) {
    to.insert(to.end(), from.begin(), from.end());
  };
  append(total.decode_ms_per_token, turn.decode_ms_per_token);
  append(total.embedded_per_step, turn.embedded_per_step);
  append(total.head_rows, turn.head_rows);
  append(total.head_bytes, turn.head_bytes);
  total.head = turn.head;
  append(total.prompt_ids, turn.prompt_ids);
  append(total.generated_ids, turn.generated_ids);
  total.stop_reason = turn.stop_reason;
}

} // namespace bitnet::cli

namespace bitnet::cli {

namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" for the closest candidate within a third of the word's length.
std::string suggestion(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string* best = nullptr;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = &c;
    }
  }
  return best ? fmt::format(" (did you mean '{}'?)", *best) : std::string();
}

bool is_number(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return !s.empty() && s.find_first_not_of("0123456789.eE") == std::string_view::npos;
}

// Root options that take a value, so their value is not taken for the command.
bool root_option_with_value(std::string_view arg) {
  return arg == "--log-level" || arg == "--isa";
}

// Options whose value is free text: never rewritten.
bool takes_text(std::string_view arg) {
  for (const char* o : {"-p", "--prompt", "--system", "--system-prompt", "-sys", "-r",
                        "--reverse-prompt", "--stop", "--in-prefix", "--in-suffix", "-f", "--file"})
    if (arg == o) return true;
  return false;
}

} // namespace

std::vector<std::string> rewrite_llama_flags(std::vector<std::string> args) {
  static const std::pair<const char*, const char*> kLong[] = {
      {"-cnv", "--conversation"},   {"-sys", "--system-prompt"}, {"-st", "--single-turn"},
      {"-tb", "--threads-batch"},   {"-ub", "--ubatch-size"},    {"-mli", "--multiline-input"},
      {"-dkvc", "--dump-kv-cache"}, {"-np", "--parallel"}};
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") { // the rest is not options
      out.insert(out.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
      break;
    }
    if (i > 0 && takes_text(args[i - 1])) {
      out.push_back(a);
      continue;
    }
    const std::string name = a.substr(0, a.find('='));
    bool done = false;
    for (const auto& [from, to] : kLong)
      if (name == from) {
        out.push_back(to + a.substr(name.size()));
        done = true;
      }
    if (done) continue;
    if (name == "-fa" || name == "--flash-attn") {
      std::fprintf(stderr,
                   "warn: %s ignored: bitnet's attention keeps ggml's exact order "
                   "(flash attention would change the numbers)\n",
                   name.c_str());
    } else if (name == "-ngl" || name == "--n-gpu-layers" || name == "--gpu-layers") {
      std::fprintf(stderr, "warn: %s ignored: bitnet runs on the CPU only\n", name.c_str());
      if (a.find('=') == std::string::npos && i + 1 < args.size()) ++i; // its value
    } else if (name == "-hf" || name == "-hfr" || name == "-hff" || name == "--hf-repo" ||
               name == "--hf-file" || name == "-mu" || name == "--model-url") {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("{}: bitnet does not download models; download the file yourself "
                              "and pass -m FILE (README: \"Getting the real model\")",
                              name));
    } else {
      out.push_back(a);
    }
  }
  return out;
}

CLI::Validator positive_number() {
  return CLI::Validator(
      [](std::string& in) -> std::string {
        double v = 0.0;
        if (!CLI::detail::lexical_cast(in, v) || !(v > 0.0))
          return "must be a number > 0, not " + in;
        return {};
      },
      "NUMBER > 0");
}

std::string check_command(const CLI::App& app, const std::vector<std::string>& args) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    names.push_back(sub->get_name());
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help" || a == "--version") return {};
    if (root_option_with_value(a)) {
      ++i;
      continue;
    }
    if (a.empty() || a[0] == '-') continue;
    if (std::find(names.begin(), names.end(), a) != names.end()) return {};
    const std::string hint = suggestion(a, names);
    return fmt::format("unknown command '{}'{}", a,
                       hint.empty() ? fmt::format(" (commands: {})", fmt::join(names, ", "))
                                    : hint);
  }
  return fmt::format("no command given (commands: {}; see --help)", fmt::join(names, ", "));
}

std::string explain_unknown_option(const CLI::App& app, const std::vector<std::string>& args) {
  const CLI::App* cmd = nullptr;
  for (const std::string& a : args)
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
      if (!cmd && sub->get_name() == a) cmd = sub;
  std::vector<std::string> known = {"-h", "--help"};
  for (const CLI::App* scope : {&app, cmd}) {
    if (!scope) continue;
    for (const CLI::Option* opt : scope->get_options()) {
      for (const std::string& n : opt->get_lnames())
        known.push_back("--" + n);
      for (const std::string& n : opt->get_snames())
        known.push_back("-" + n);
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (i > 0 && takes_text(args[i - 1])) continue;
    if (a.size() < 2 || a[0] != '-' || is_number(a)) continue;
    const std::string name = a.substr(0, a.find('='));
    // -n5 style: a short option with its value attached.
    if (name.size() > 2 && name[1] != '-' &&
        std::find(known.begin(), known.end(), name.substr(0, 2)) != known.end())
      continue;
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    return fmt::format("unknown option '{}'{}{}", name, suggestion(name, known),
                       cmd ? fmt::format(" (see bitnet {} --help)", cmd->get_name()) : "");
  }
  return {};
}

namespace {

// Length of the UTF-8 sequence at text[i] judged by its lead and continuation bytes, or 0.
size_t utf8_length(std::string_view text, size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  const size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  if (n == 0 || i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
  return n;
}

} // namespace

std::string escape_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : 0;
    if (c >= 0x80) { // a whole valid UTF-8 sequence, or one invalid byte
      const size_t len = utf8_length(text, i);
      n = len;
      // C1 controls (U+0080..U+009F) are two-byte sequences C2 80..C2 9F.
      if (len == 2 && c == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0) n = 0;
      if (n > 0) {
        out.append(text, i, n);
        i += n;
        continue;
      }
      if (len == 2) { // C1 control: both bytes escaped
        out += fmt::format("\\x{:02x}\\x{:02x}", c, static_cast<unsigned char>(text[i + 1]));
        i += 2;
        continue;
      }
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    switch (c) {
    case '\n':
      out += "\\n";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\\':
      out += "\\\\";
      break;
    default:
      if (c < 0x20 || c == 0x7F)
        out += fmt::format("\\x{:02x}", c);
      else
        out += static_cast<char>(c);
    }
    ++i;
  }
  return out;
}

std::string process_escapes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    const char c = text[++i];
    switch (c) {
    case 'n':
      out += '\n';
      break;
    case 'r':
      out += '\r';
      break;
    case 't':
      out += '\t';
      break;
    case '\'':
      out += '\'';
      break;
    case '"':
      out += '"';
      break;
    case '\\':
      out += '\\';
      break;
    case 'x':
      if (i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
        out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
        i += 2;
        break;
      }
      [[fallthrough]];
    default:
      out += '\\';
      out += c;
    }
  }
  return out;
}

} // namespace bitnet::cli
