// `bitnet synth`: write a synthetic BitNet b1.58 model in the exact 2B-4T GGUF format.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "bitnet/convert.hpp"
#include "commands.hpp"

namespace bitnet::cli {

namespace {

struct SynthArgs {
  SynthOptions options;
  std::string out;
  std::string tokenizer;
  std::string pre;
};

// Percentage on one terminal line, redrawn only when it changes.
class ProgressLine {
public:
  void operator()(uint64_t done, uint64_t total) {
    const int percent = total == 0 ? 100 : static_cast<int>(done * 100 / total);
    if (percent == last_percent_) return;
    last_percent_ = percent;
    std::fprintf(stderr, "\rsynth: %3d%% (%.1f / %.1f MiB)", percent,
                 static_cast<double>(done) / (1 << 20), static_cast<double>(total) / (1 << 20));
    std::fflush(stderr);
  }
  void finish() const {
    if (last_percent_ >= 0) std::fputc('\n', stderr);
  }

private:
  int last_percent_ = -1;
};

int run_synth(SynthArgs& args) {
  if (!args.tokenizer.empty()) args.options.tokenizer_json = args.tokenizer;
  if (!args.pre.empty()) args.options.pre = args.pre;

  const auto start = std::chrono::steady_clock::now();
  ProgressLine line;
  Progress progress;
  if (isatty(fileno(stderr)))
    progress = [&line](uint64_t done, uint64_t total) { line(done, total); };
  SynthSummary summary;
  try {
    summary = synthesize(args.out, args.options, progress);
  } catch (...) {
    line.finish();
    throw;
  }
  line.finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("wrote {}: preset {}, arch {}, seed {}, {} tensors, {} parameters, vocab {}, "
               "{} bytes in {:.1f} s",
               args.out, args.options.preset, args.options.arch, args.options.seed,
               summary.n_tensors, summary.n_params, summary.n_vocab, summary.file_size, seconds);
  return 0;
}

} // namespace

CommandFn add_synth(CLI::App& root) {
  auto args = std::make_shared<SynthArgs>();
  CLI::App* cmd = root.add_subcommand(
      "synth", "Write a synthetic BitNet b1.58 model (random ternary weights) in the exact "
               "format of microsoft/bitnet-b1.58-2B-4T-gguf");
  cmd->add_option("--preset", args->options.preset, "Shape: tiny, small or 2b4t (the real 2B-4T)")
      ->required()
      ->check(CLI::IsMember(synth_presets()));
  cmd->add_option("--seed", args->options.seed, "Random seed (same seed, same bytes)")
      ->capture_default_str();
  cmd->add_option("--out", args->out, "Output GGUF file")->required();
  cmd->add_option("--tokenizer", args->tokenizer,
                  "HF tokenizer.json to embed (default: a small built-in byte-level BPE)");
  cmd->add_option("--arch", args->options.arch, "general.architecture")
      ->capture_default_str()
      ->check(CLI::IsMember({"bitnet-b1.58", "bitnet-25"}));
  cmd->add_option("--pre", args->pre,
                  "Write tokenizer.ggml.pre = NAME (the real 2B-4T file has none)");
  return [args] { return run_synth(*args); };
}

} // namespace bitnet::cli
