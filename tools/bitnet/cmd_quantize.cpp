// `bitnet quantize IN OUT --type i2_s [--ternarize]`: what llama-quantize does for
// bitnet.cpp users converting their own checkpoints.
#include <algorithm>
#include <cctype>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "bitnet/convert.hpp"
#include "bitnet/error.hpp"
#include "commands.hpp"

namespace bitnet::cli {

namespace {

struct QuantizeArgs {
  std::string in;
  std::string out;
  std::string type = "i2_s";
  bool ternarize = false;
};

int run_quantize(const QuantizeArgs& args) {
  // llama-quantize names the target type; I2_S is the only one this writes.
  std::string type = args.type;
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (type != "i2_s") {
    throw Error(ErrorKind::invalid_argument,
                "--type: '" + args.type + "' is not supported (only i2_s)");
  }
  const QuantizeSummary s = quantize(args.in, args.out, {.ternarize = args.ternarize});
  spdlog::info("quantize: {} linear weights → I2_S ({} ternarized), {:.2f} MB → {:.2f} MB: {}",
               s.n_quantized, s.n_ternarized, static_cast<double>(s.bytes_in) / 1e6,
               static_cast<double>(s.bytes_out) / 1e6, args.out);
  return 0;
}

} // namespace

CommandFn add_quantize(CLI::App& root) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = root.add_subcommand(
      "quantize", "Convert F32/F16/BF16 ternary linear weights to I2_S, as bitnet.cpp packs them");
  cmd->add_option("in", args->in, "Input GGUF")->required();
  cmd->add_option("out", args->out, "Output GGUF")->required();
  cmd->add_option("--type", args->type, "Target weight type (i2_s)")->capture_default_str();
  cmd->add_flag("--ternarize", args->ternarize,
                "Ternarize non-ternary weights with absmean (BitNet's weight_quant) instead of "
                "refusing them");
  return [args] { return run_quantize(*args); };
}

} // namespace bitnet::cli
