// Writing model files: synthetic models in the exact format of
// microsoft/bitnet-b1.58-2B-4T-gguf (`bitnet synth`), and F32/F16/BF16 ternary weights
// packed as I2_S the way llama-quantize packs them (`bitnet quantize`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace bitnet {

// Called as a file is written, with the bytes of tensor data done so far and in all.
using Progress = std::function<void(uint64_t bytes_done, uint64_t bytes_total)>;

struct SynthOptions {
  std::string preset = "tiny";               // synth_presets(): tiny, small, 2b4t (the real shape)
  uint64_t seed = 1;                         // same options, same bytes
  std::string arch = "bitnet-b1.58";         // general.architecture, or "bitnet-25"
  std::optional<std::string> tokenizer_json; // HF tokenizer.json; a built-in BPE when absent
  std::optional<std::string> pre;            // tokenizer.ggml.pre (the real file has none)
};

struct SynthSummary {
  uint64_t file_size = 0;
  std::size_t n_tensors = 0;
  uint64_t n_params = 0;
  std::size_t n_vocab = 0;
};

const std::vector<std::string>& synth_presets();

// Writes a synthetic model (random ternary weights, the real metadata keys, tensor names,
// shapes and types) to `path`, one tensor in memory at a time. Throws Error(invalid_argument)
// for an unknown preset or arch, Error(invalid_input) for an unusable tokenizer.json,
// Error(io) when the file cannot be written (nothing is left behind).
SynthSummary synthesize(const std::string& path, const SynthOptions& options,
                        const Progress& progress = {});

struct QuantizeOptions {
  // Ternarize weights that are not already ternary × one scale with BitNet's absmean rule
  // (scale = mean|W|, w = clamp(round(W / scale), -1, 1)); without it they are refused.
  bool ternarize = false;
};

struct QuantizeSummary {
  std::size_t n_quantized = 0;  // linear weights written as I2_S
  std::size_t n_ternarized = 0; // of which ternarized by absmean
  uint64_t bytes_in = 0;        // input file size
  uint64_t bytes_out = 0;       // output file size
};

// Reads the GGUF at `in_path` and writes `out_path` with every 2-D linear weight
// (blk.N.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down}.weight) as I2_S, the
// output head as Q8_0 when n_embd % 256 != 0 (else F16), every other tensor copied, and
// general.file_type 40 as llama-quantize writes them. Throws Error(invalid_input) for
// non-ternary weights without `ternarize`, Error(unsupported) for tensors it cannot convert.
QuantizeSummary quantize(const std::string& in_path, const std::string& out_path,
                         const QuantizeOptions& options = {});

} // namespace bitnet
