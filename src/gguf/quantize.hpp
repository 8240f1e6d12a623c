// `bitnet quantize`: F32/F16/BF16 ternary linear weights → I2_S, the job bitnet.cpp users
// do with `llama-quantize … I2_S 1`, producing the same bytes (docs/gguf-format.md §3, reference
// README).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "bitnet/convert.hpp"
#include "gguf/gguf.hpp"

namespace bitnet::gguf {

struct QuantizeOptions {
  TensorType type = TensorType::I2_S; // the only target this tool writes
  // Ternarize weights that are not already ternary × one scale with BitNet's absmean rule
  // (scale = mean|W|, w = clamp(round(W / scale), -1, 1)); without it they are refused.
  bool ternarize = false;
};

using QuantizeSummary = bitnet::QuantizeSummary; // include/bitnet/convert.hpp

// The 2-D blk.N.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down}.weight tensors.
bool is_linear_weight(std::string_view name, std::size_t n_dims);

// ggml's quantize_row_q8_0_ref: per 32 values d = amax/127, q = round(x/d), d stored as f16.
// x.size() must be a multiple of 32; out gets x.size()/32 * 34 bytes.
void quantize_row_q8_0(std::span<const float> x, std::span<uint8_t> out);

// Reads `in`, writes `out_path`. Metadata as llama-quantize writes it: general.file_type 40,
// general.quantization_version 2; the output head (tied token_embd or output.weight) as Q8_0
// when n_embd % 256 != 0, else F16; every other tensor copied unchanged. Throws
// Error(invalid_input) for non-ternary weights without `ternarize`, Error(unsupported) for
// tensors it cannot convert.
QuantizeSummary quantize(const File& in, const std::string& out_path,
                         const QuantizeOptions& options);

} // namespace bitnet::gguf
