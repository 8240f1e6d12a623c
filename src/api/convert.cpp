// include/bitnet/convert.hpp: src/synth's writer and src/gguf's quantizer.
#include "bitnet/convert.hpp"

#include "gguf/quantize.hpp"
#include "synth/synth.hpp"

namespace bitnet {

const std::vector<std::string>& synth_presets() {
  return synth::preset_names();
}

SynthSummary synthesize(const std::string& path, const SynthOptions& options,
                        const Progress& progress) {
  return synth::write_model(path, options, progress);
}

QuantizeSummary quantize(const std::string& in_path, const std::string& out_path,
                         const QuantizeOptions& options) {
  gguf::QuantizeOptions o;
  o.ternarize = options.ternarize;
  return gguf::quantize(gguf::File::open(in_path), out_path, o);
}

} // namespace bitnet
