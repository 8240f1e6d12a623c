// `bitnet bench`: llama-bench's tests (ppN: one batched prefill of N random tokens; tgN: N
// decode steps after BOS; each after -d N random tokens already in the context) and output
// shapes (md, json, csv), plus the ISA and the share of a physical limit reached, each measured
// by src/probes at the test's thread count in the same run: for tg the memory-bandwidth floor,
// for pp the int8 MAC peak.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bitnet/bitnet.hpp"
#include "bitnet/build_info.hpp"
#include "cli_common.hpp"
#include "commands.hpp"

namespace bitnet::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string model;
  std::vector<int32_t> n_prompt = {128};
  std::vector<int32_t> n_gen = {64};
  std::vector<int32_t> n_depth = {0};
  std::vector<int32_t> n_threads = {default_threads()};
  int32_t repetitions = 5;
  int32_t n_batch = 512;
  std::string kv_type = "f16";
  std::vector<std::string> head = {"screened"};
  std::string output = "md";
  double bandwidth_gbps = 0.0; // 0: measure
  bool interleave = false;     // the tests' timed runs in turns
};

struct TestResult {
  int32_t n_prompt = 0;
  int32_t n_gen = 0;
  int32_t n_depth = 0;
  int32_t n_threads = 0;
  HeadMode head = HeadMode::exact; // what computed the logits sampled from (tg) or returned (pp)
  std::string test_time;
  std::vector<double> samples_ns;
  std::vector<double> samples_ts;
  double bytes_per_token = 0.0; // tg only
  double head_rows = 0.0;       // tg only: mean head rows computed exactly per step
  double bandwidth_gbps = 0.0;  // tg only: the floor's denominator
  int64_t macs_per_token = 0;   // pp only: I2_S matmul MACs
  double mac_peak_gmacs = 0.0;  // pp only: the share's denominator
};

double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// Sample standard deviation, as llama-bench (0 for a single sample).
double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean(v);
  double sq = 0.0;
  for (double x : v)
    sq += (x - m) * (x - m);
  return std::sqrt(sq / static_cast<double>(v.size() - 1));
}

std::vector<int32_t> random_tokens(int32_t n, int32_t n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> pick(0, n_vocab - 1);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int32_t& id : ids)
    id = pick(rng);
  return ids;
}

// One timed run after the context is back at its depth; returns nanoseconds of the measured
// part.
double run_pp(Session& session, int32_t depth, const std::vector<int32_t>& ids) {
  session.truncate(depth);
  const auto t0 = Clock::now();
  session.evaluate(ids);
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
}

// tg through the one generation loop: BOS, then n tokens with EOG ignored, sampled by the
// default chain (seeded), so a screened head computes what `bitnet run` needs: the rows that
// can reach the top 40. Only the decode forwards, their head steps and sampling are timed,
// as llama-bench times only its n_gen evaluations.
Stats run_tg(Session& session, int32_t depth, int32_t n, HeadMode head) {
  session.truncate(depth);
  GenerateParams params;
  params.n_predict = n;
  params.sampler.seed = 42;
  params.ignore_eos = true;
  params.head = head;
  const int32_t bos = session.model().tokenizer().bos();
  return generate(session, std::span(&bos, 1), params);
}

// llama-bench's names: "pp512", "tg128 @ d2048".
std::string test_name(const TestResult& r) {
  const std::string name =
      r.n_prompt > 0 ? fmt::format("pp{}", r.n_prompt) : fmt::format("tg{}", r.n_gen);
  return r.n_depth > 0 ? fmt::format("{} @ d{}", name, r.n_depth) : name;
}

// One test in its own session. The context is filled to `depth` once, untimed (as llama-bench
// fills it before each test); every run then starts from it, since later positions never change
// earlier cache entries.
class BenchTest {
public:
  BenchTest(const std::shared_ptr<Model>& model, const SessionParams& sp, int32_t depth,
            int32_t n_prompt, int32_t n_gen, HeadMode head)
      : session_(model, sp), depth_(depth), n_prompt_(n_prompt), n_gen_(n_gen), head_(head) {
    r_.n_prompt = n_prompt;
    r_.n_gen = n_gen;
    r_.n_depth = depth;
    r_.n_threads = session_.n_threads();
    spdlog::debug("bench: {} threads, {}", r_.n_threads, test_name(r_));
    r_.test_time = utc_timestamp();
    const int32_t n_vocab = model->info().n_vocab;
    ids_ = random_tokens(n_prompt, n_vocab, 42);
    session_.clear();
    if (depth > 0) session_.evaluate(random_tokens(depth, n_vocab, 43));
    once(); // warm-up, not counted
  }

  // One timed run, recorded.
  void run() {
    spdlog::debug("bench: run {} of {}", r_.samples_ns.size() + 1, test_name(r_));
    const double ns = once();
    r_.samples_ns.push_back(ns);
    r_.samples_ts.push_back(1e9 * (n_prompt_ > 0 ? n_prompt_ : n_gen_) / ns);
  }

  TestResult result() {
    if (n_gen_ > 0) { // every run samples the same tokens: the last one's counts stand for all
      r_.head = tg_.head;
      r_.bytes_per_token = decode_bytes_per_token(session_, tg_);
      r_.head_rows = std::accumulate(tg_.head_rows.begin(), tg_.head_rows.end(), 0.0) /
                     static_cast<double>(tg_.head_rows.size());
    }
    return r_;
  }

private:
  double once() {
    if (n_prompt_ > 0) return run_pp(session_, depth_, ids_);
    tg_ = run_tg(session_, depth_, n_gen_, head_);
    return (tg_.decode_ms + tg_.sample_ms) * 1e6;
  }

  Session session_;
  int32_t depth_, n_prompt_, n_gen_;
  HeadMode head_;
  std::vector<int32_t> ids_;
  Stats tg_;
  TestResult r_;
};

std::string human_size(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  return b < 1024.0 * 1024 * 1024 ? fmt::format("{:.2f} MiB", b / (1024.0 * 1024))
                                  : fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
}

std::string human_params(uint64_t n) {
  const double v = static_cast<double>(n);
  return v < 1e9 ? fmt::format("{:.2f} M", v / 1e6) : fmt::format("{:.2f} B", v / 1e9);
}

// tg: achieved bytes/s over the streaming-read bandwidth.
double bw_share(const TestResult& r) {
  return r.bytes_per_token * mean(r.samples_ts) / 1e9 / r.bandwidth_gbps;
}

// pp: achieved I2_S MACs/s over the int8 MAC peak.
double peak_share(const TestResult& r) {
  return static_cast<double>(r.macs_per_token) * mean(r.samples_ts) / 1e9 / r.mac_peak_gmacs;
}

Json to_json(const TestResult& r, const ModelInfo& info, const BenchOptions& o) {
  Json v;
  v["build_commit"] = build::kCommit;
  v["cpu_info"] = cpu_description();
  v["isa"] = current_isa();
  v["model_filename"] = info.path;
  v["model_type"] = info.architecture;
  v["model_size"] = info.file_size;
  v["model_n_params"] = info.n_params;
  v["n_batch"] = o.n_batch;
  v["n_threads"] = r.n_threads;
  v["type_k"] = o.kv_type;
  v["type_v"] = o.kv_type;
  v["n_prompt"] = r.n_prompt;
  v["n_gen"] = r.n_gen;
  v["n_depth"] = r.n_depth;
  v["head"] = to_string(r.head);
  v["test_time"] = r.test_time;
  v["avg_ns"] = static_cast<int64_t>(std::llround(mean(r.samples_ns)));
  v["stddev_ns"] = static_cast<int64_t>(std::llround(stddev(r.samples_ns)));
  v["avg_ts"] = number(mean(r.samples_ts));
  v["stddev_ts"] = number(stddev(r.samples_ts));
  Json& ns = v["samples_ns"] = Json::array();
  for (double x : r.samples_ns)
    ns.push_back(static_cast<int64_t>(std::llround(x)));
  v["samples_ts"] = numbers(r.samples_ts);
  if (r.n_gen > 0) {
    v["head_rows_per_step"] = number(r.head_rows);
    v["bytes_per_token"] = number(r.bytes_per_token);
    v["bandwidth_gbps"] = number(r.bandwidth_gbps);
    v["bw_share"] = number(bw_share(r));
    v["macs_per_token"] = nullptr;
    v["mac_peak_gmacs"] = nullptr;
    v["peak_share"] = nullptr;
  } else {
    v["head_rows_per_step"] = nullptr;
    v["bytes_per_token"] = nullptr;
    v["bandwidth_gbps"] = nullptr;
    v["bw_share"] = nullptr;
    v["macs_per_token"] = r.macs_per_token;
    v["mac_peak_gmacs"] = number(r.mac_peak_gmacs);
    v["peak_share"] = number(peak_share(r));
  }
  return v;
}

void print_md(const std::vector<TestResult>& results, const ModelInfo& info) {
  const std::string model = fmt::format("{} {}", info.architecture, human_params(info.n_params));
  std::string out = fmt::format("| {:<30} | {:>10} | {:>10} | {:<8} | {:>7} | {:>16} | {:<8} | "
                                "{:>20} | {:>8} | {:>8} | {:>8} |\n",
                                "model", "size", "params", "isa", "threads", "test", "head", "t/s",
                                "GB/s", "% bw", "% peak");
  out += fmt::format("| {:-<30} | {:->9}: | {:->9}: | {:-<8} | {:->6}: | {:->15}: | {:-<8} | "
                     "{:->19}: | {:->7}: | {:->7}: | {:->7}: |\n",
                     "", "", "", "", "", "", "", "", "", "", "");
  for (const TestResult& r : results) {
    const double ts = mean(r.samples_ts);
    std::string gbs = "-";
    std::string bw = "-";
    std::string peak = "-";
    if (r.n_gen > 0) {
      gbs = fmt::format("{:.2f}", r.bytes_per_token * ts / 1e9);
      bw = fmt::format("{:.1f}", 100.0 * bw_share(r));
    } else {
      peak = fmt::format("{:.1f}", 100.0 * peak_share(r));
    }
    out += fmt::format("| {:<30} | {:>10} | {:>10} | {:<8} | {:>7} | {:>16} | {:<8} | {:>20} | "
                       "{:>8} | {:>8} | {:>8} |\n",
                       model, human_size(info.file_size), human_params(info.n_params),
                       current_isa(), r.n_threads, test_name(r), to_string(r.head),
                       fmt::format("{:.2f} ± {:.2f}", ts, stddev(r.samples_ts)), gbs, bw, peak);
  }
  out += fmt::format("\nbuild: {} ({})\n", build::kCommit, build::kBuildType);
  write_stdout(out);
}

std::string csv_field(const Json& v) {
  if (v.is_array()) {
    std::string joined;
    for (const Json& x : v) {
      if (!joined.empty()) joined += ';';
      joined += dump(x);
    }
    return "\"" + joined + "\"";
  }
  if (v.is_string()) {
    std::string quoted = "\"";
    for (char ch : v.get_ref<const std::string&>())
      quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return quoted + "\"";
  }
  return dump(v);
}

void print_csv(const Json& rows) {
  std::string out;
  const auto line = [&](const Json& row, bool header) {
    bool first = true;
    for (const auto& [key, value] : row.items()) {
      if (!std::exchange(first, false)) out += ',';
      out += header ? key : csv_field(value);
    }
    out += '\n';
  };
  if (!rows.empty()) line(rows.front(), true);
  for (const Json& row : rows)
    line(row, false);
  write_stdout(out);
}

int run_bench(const BenchOptions& o) {
  if (o.output != "md" && o.output != "json" && o.output != "csv") {
    throw Error(ErrorKind::invalid_argument,
                "-o: unknown format '" + o.output + "' (md, json, csv)");
  }
  const KvType kv = parse_kv_type(o.kv_type);
  std::vector<HeadMode> heads;
  for (const std::string& h : o.head)
    heads.push_back(parse_head_mode(h));
  ModelOptions mo; // the screen only when a tg row uses it
  mo.head = std::find(heads.begin(), heads.end(), HeadMode::screened) != heads.end()
                ? HeadMode::screened
                : HeadMode::exact;
  const std::shared_ptr<Model> model = Model::load(resolve_model_path(o.model), mo);
  const ModelInfo& info = model->info();
  const auto macs_per_token = static_cast<int64_t>(info.i2s_macs_per_token);

  // Each limit is measured once per thread count, with a pool of that many threads.
  using Measure = double (*)(ThreadPool&);
  auto limit = [&](std::map<int32_t, double>& measured, int32_t t, Measure measure) {
    auto it = measured.find(t);
    if (it == measured.end()) {
      ThreadPool pool(t);
      it = measured.emplace(t, measure(pool)).first;
    }
    return it->second;
  };
  std::map<int32_t, double> bandwidth; // GB/s per thread count
  std::map<int32_t, double> mac_peak;  // GMAC/s per thread count

  std::vector<TestResult> results;
  for (int32_t t : o.n_threads) {
    auto make = [&](int32_t depth, int32_t n_prompt, int32_t n_gen, HeadMode head) {
      SessionParams sp;
      sp.n_ctx = depth + (n_prompt > 0 ? n_prompt : n_gen + 1);
      if (sp.n_ctx > info.n_ctx_train) {
        const std::string test =
            n_prompt > 0 ? fmt::format("-p {}", n_prompt) : fmt::format("-n {}", n_gen);
        throw Error(ErrorKind::context_overflow,
                    fmt::format("-d {} with {} needs a context of {}, more than the model's {}",
                                depth, test, sp.n_ctx, info.n_ctx_train));
      }
      sp.n_batch = o.n_batch;
      sp.n_threads = t;
      sp.kv_type = kv;
      return std::make_unique<BenchTest>(model, sp, depth, n_prompt, n_gen, head);
    };
    auto finish = [&](BenchTest& test) {
      TestResult r = test.result();
      if (r.n_gen > 0) {
        r.bandwidth_gbps =
            o.bandwidth_gbps > 0 ? o.bandwidth_gbps : limit(bandwidth, t, measure_bandwidth_gbps);
      } else {
        r.macs_per_token = macs_per_token;
        r.mac_peak_gmacs = limit(mac_peak, t, measure_mac_peak_gmacs);
      }
      results.push_back(std::move(r));
    };
    // The tests in llama-bench's order: by depth, the prompts (their logits: the whole head),
    // then the generations.
    struct Spec {
      int32_t depth, n_prompt, n_gen;
      HeadMode head;
    };
    std::vector<Spec> specs;
    for (int32_t d : o.n_depth) {
      for (int32_t p : o.n_prompt)
        if (p > 0) specs.push_back({d, p, 0, HeadMode::exact});
      for (int32_t n : o.n_gen)
        for (HeadMode h : heads)
          if (n > 0) specs.push_back({d, 0, n, h});
    }
    // The timed runs go in turns within a group: each test alone (one session at a time), or
    // with --interleave all of them.
    const size_t group = o.interleave ? specs.size() : 1;
    for (size_t g0 = 0; g0 < specs.size(); g0 += group) {
      std::vector<std::unique_ptr<BenchTest>> tests;
      for (size_t i = g0; i < std::min(specs.size(), g0 + group); ++i)
        tests.push_back(make(specs[i].depth, specs[i].n_prompt, specs[i].n_gen, specs[i].head));
      for (int32_t i = 0; i < o.repetitions; ++i)
        for (const auto& test : tests)
          test->run();
      for (const auto& test : tests)
        finish(*test);
    }
  }
  if (results.empty()) throw Error(ErrorKind::invalid_argument, "nothing to run: -p and -n are 0");

  if (o.output == "md") {
    print_md(results, info);
    for (const auto& [t, gbps] : bandwidth) {
      print_stdout("memory bandwidth (streaming-read probe, {} threads): {:.2f} GB/s\n", t, gbps);
    }
    for (const auto& [t, gmacs] : mac_peak) {
      print_stdout("int8 MAC peak ({}, {} threads): {:.2f} GMAC/s\n", mac_peak_instruction(), t,
                   gmacs);
    }
    if (!mac_peak.empty()) {
      print_stdout("% peak: pp t/s x {:.2f} M MAC per token (I2_S matmuls only) over the int8 MAC "
                   "peak\n",
                   static_cast<double>(macs_per_token) / 1e6);
    }
    for (const TestResult& r : results)
      if (r.n_gen > 0 && r.head == HeadMode::screened)
        print_stdout("head screened ({} threads, {}): {:.1f} rows recomputed exactly per step\n",
                     r.n_threads, test_name(r), r.head_rows);
    if (!bandwidth.empty())
      write_stdout("tg: sampled by the default chain (top-k 40, top-p 0.95, min-p 0.05, temp 0.8, "
                   "seed 42): the screened head computes the rows that can reach the top 40\n");
  } else {
    Json rows = Json::array();
    for (const TestResult& r : results)
      rows.push_back(to_json(r, info, o));
    if (o.output == "json") {
      write_stdout(dump(rows, 2) + "\n");
    } else {
      print_csv(rows);
    }
  }
  flush_stdout();
  return 0;
}

} // namespace

CommandFn add_bench(CLI::App& root) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = root.add_subcommand(
      "bench", "Prompt (ppN) and generation (tgN) throughput, shaped like llama-bench");
  cmd->add_option("-m,--model", o->model, "GGUF model file (default: the demo model)");
  const auto non_negative = CLI::Range(0, std::numeric_limits<int32_t>::max());
  cmd->add_option("-p,--n-prompt", o->n_prompt, "Prompt lengths, comma separated; 0 skips pp")
      ->delimiter(',')
      ->capture_default_str()
      ->check(non_negative);
  cmd->add_option("-n,--n-gen", o->n_gen, "Generation lengths, comma separated; 0 skips tg")
      ->delimiter(',')
      ->capture_default_str()
      ->check(non_negative);
  cmd->add_option("-d,--depth,--n-depth", o->n_depth,
                  "Tokens already in the context before each test, comma separated")
      ->delimiter(',')
      ->capture_default_str()
      ->check(non_negative);
  cmd->add_option(
         "-t,--threads", o->n_threads,
         "Thread counts, comma separated (default: the physical cores this process may use)")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::Range(1, kMaxThreads));
  cmd->add_option("-r,--repetitions", o->repetitions, "Timed runs per test (after one warm-up)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->add_option("-b,--batch-size", o->n_batch, "Prompt tokens per batched forward")
      ->capture_default_str()
      ->check(CLI::Range(1, std::numeric_limits<int32_t>::max()));
  cmd->add_option("--kv-type", o->kv_type, "KV cache type: f16 or f32")->capture_default_str();
  cmd->add_option("--head", o->head,
                  "Output heads of the tg tests, comma separated: screened, exact")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("-o,--output", o->output, "Output format: md, json or csv")
      ->capture_default_str();
  cmd->add_flag("--interleave", o->interleave,
                "Run the tests' timed runs in turns, each test in its own session held "
                "throughout, so that a noisy host's slow spells reach every test alike (their "
                "ratios, e.g. -d 0,2048, become comparable)");
  cmd->add_option("--bw", o->bandwidth_gbps,
                  "Memory bandwidth in GB/s for the tg floor share (default: measured with a "
                  "streaming-read probe)")
      ->check(positive_number());
  return [o]() -> int { return run_bench(*o); };
}

} // namespace bitnet::cli
