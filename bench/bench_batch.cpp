// Aggregate decode throughput of 1 sequence against N decoded together (bitnet/batch.hpp):
// one batched forward reads the weights once for all N, so N sequences should cost well
// under N times one. Greedy Generations on sessions sharing one pool, the two batch sizes
// alternated in this process (pairs of runs; the host's noise hits both alike), median
// ratio printed.
//   bench_batch -m models/synth-2b4t-s1.gguf -t 2 -n 4 --steps 32 --pairs 5
#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bitnet/bitnet.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"batched decode throughput: 1 sequence vs N together"};
  std::string model_path;
  int32_t threads = 2, n = 4, steps = 32, pairs = 5;
  std::string head = "screened";
  app.add_option("-m,--model", model_path, "GGUF model")->required();
  app.add_option("-t,--threads", threads, "threads of the shared pool");
  app.add_option("-n,--parallel", n, "sequences decoded together")->check(CLI::Range(2, 64));
  app.add_option("--steps", steps, "decode steps per run")->check(CLI::Range(1, 4096));
  app.add_option("--pairs", pairs, "alternated (1, N) run pairs")->check(CLI::Range(1, 100));
  app.add_option("--head", head, "output head")->check(CLI::IsMember({"screened", "exact"}));
  CLI11_PARSE(app, argc, argv);
  try {
    bitnet::ModelOptions options;
    options.batched_decode = true; // the screen as `bitnet serve --parallel N` lays it out
    const auto model = bitnet::Model::load(model_path, options);
    const auto pool = std::make_shared<bitnet::ThreadPool>(threads);
    const bitnet::Tokenizer& tok = model->tokenizer();
    std::vector<std::unique_ptr<bitnet::Session>> sessions;
    std::vector<std::vector<int32_t>> prompts;
    for (int32_t i = 0; i < n; ++i) { // different prompts: the sequences really differ
      prompts.push_back(tok.tokenize(fmt::format("Story number {} begins when", i + 1), true));
      sessions.push_back(std::make_unique<bitnet::Session>(
          model,
          bitnet::SessionParams{.n_ctx = static_cast<int32_t>(prompts.back().size()) + steps + 1,
                                .pool = pool}));
      sessions.back()->evaluate(std::span(prompts.back()).first(prompts.back().size() - 1));
    }
    bitnet::GenerateParams params;
    params.n_predict = steps;
    params.sampler.temp = 0.0f;
    params.ignore_eos = true;
    params.head = head == "exact" ? bitnet::HeadMode::exact : bitnet::HeadMode::screened;

    // Aggregate generated tokens per second of `count` sequences, each continuing its
    // cached prompt from its last token (forwarded before the clock starts).
    const auto run = [&](int32_t count) {
      std::vector<std::unique_ptr<bitnet::Generation>> gens;
      for (int32_t i = 0; i < count; ++i) {
        bitnet::Session& s = *sessions[static_cast<size_t>(i)];
        const std::vector<int32_t>& p = prompts[static_cast<size_t>(i)];
        s.truncate(static_cast<int32_t>(p.size()) - 1);
        gens.push_back(std::make_unique<bitnet::Generation>(s, std::span(p).last(1), params));
        gens.back()->prefill();
      }
      const auto t0 = Clock::now();
      std::vector<bitnet::Generation*> all;
      for (auto& g : gens)
        all.push_back(g.get());
      bitnet::prepare_next(all); // the first head steps together, as the server runs them
      for (;;) {
        std::vector<bitnet::Generation*> step;
        for (auto& g : gens)
          if (!g->done()) {
            g->next();
            step.push_back(g.get());
          }
        if (step.empty()) break;
        bitnet::decode_batch(step);
      }
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      return count * steps / s;
    };

    fmt::print("model {}, {} threads, head {}, {} steps per run\n", model_path, threads, head,
               steps);
    run(n); // warm-up: page in the weights
    std::vector<double> one, many, ratio;
    for (int32_t p = 0; p < pairs; ++p) {
      one.push_back(run(1));
      many.push_back(run(n));
      ratio.push_back(many.back() / one.back());
      fmt::print("pair {}: 1 sequence {:.2f} tok/s, {} sequences {:.2f} tok/s (x{:.2f})\n", p + 1,
                 one.back(), n, many.back(), ratio.back());
    }
    fmt::print("median: 1 sequence {:.2f} tok/s, {} sequences {:.2f} tok/s aggregate, ratio "
               "x{:.2f} (x{} would be free)\n",
               median(one), n, median(many), median(ratio), n);
  } catch (const bitnet::Error& e) {
    fmt::print(stderr, "bench_batch: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
