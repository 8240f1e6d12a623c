#include "cli_common.hpp"

#include <sys/resource.h>

#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bitnet/build_info.hpp"

namespace bitnet::cli {

std::string demo_model_path() {
  return BITNET_DEMO_MODEL;
}

std::string resolve_model_path(const std::string& given) {
  if (!given.empty()) return given;
  const std::string demo = demo_model_path();
  if (!std::filesystem::exists(demo)) {
    throw Error(ErrorKind::io, "no --model given and the demo model " + demo + " is missing");
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
  timings["load"] = number(stats.load_ms);
  timings["tokenize"] = number(stats.tokenize_ms);
  timings["prefill"] = number(stats.prefill_ms);
  timings["decode"] = number(stats.decode_ms);
  timings["sample"] = number(stats.sample_ms);
  timings["total"] = number(report.total_ms);
  receipt["timings_ms"] = std::move(timings);
  receipt["prefill_tokens_per_s"] =
      number(stats.prefill_ms > 0 ? 1e3 * stats.n_prompt / stats.prefill_ms : 0.0);
  const auto n_decode = static_cast<double>(stats.decode_ms_per_token.size());
  receipt["decode_tokens_per_s"] =
      number(stats.decode_ms > 0 ? 1e3 * n_decode / stats.decode_ms : 0.0);
  receipt["decode_ms_per_token"] = numbers(stats.decode_ms_per_token);
  receipt["embedded_per_step"] = stats.embedded_per_step;
  receipt["decode_bytes_per_token"] = number(decode_bytes_per_token(session, stats));
  receipt["head"] = to_string(stats.head);
  receipt["head_rows_per_step"] = stats.head_rows;
  receipt["prompt_ids"] = stats.prompt_ids;
  receipt["generated_ids"] = stats.generated_ids;
  receipt["stop_reason"] = to_string(stats.stop_reason);
  receipt["peak_rss_bytes"] = peak_rss_bytes();
  return receipt;
}

void write_json_file(const std::string& path, const Json& value) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(ErrorKind::io, "cannot write '" + path + "'");
  out << dump(value, 2) << '\n';
  out.flush();
  if (!out) throw Error(ErrorKind::io, "cannot write '" + path + "'");
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
