// Weight views bound to the mapped GGUF file, checked by load_config first. The I2_S codes are
// copied onto huge pages; everything else is read in place.
#pragma once

#include <cstdint>
#include <vector>

#include "gguf/gguf.hpp"
#include "model/config.hpp"
#include "util/pages.hpp"

namespace bitnet::model {

class HeadScreen; // model/head_screen.hpp

// An I2_S matrix: `rows` output rows of `k` packed ternary inputs, one f32 scale.
struct I2sMatrix {
  const uint8_t* data = nullptr; // rows * k / 4 bytes, row r at r * k / 4
  float scale = 0.0f;            // per-tensor scale stored after the packed codes
  int64_t k = 0;
  int64_t rows = 0;
};

// An F16 or Q8_0 matrix of `rows` rows of `k` values (token_embd, output.weight).
struct DenseMatrix {
  const uint8_t* data = nullptr;
  gguf::TensorType type = gguf::TensorType::F16;
  int64_t k = 0;
  int64_t rows = 0;
  uint64_t row_bytes = 0;
};

struct LayerWeights {
  const float* attn_norm = nullptr;     // [n_embd]
  const float* attn_sub_norm = nullptr; // [n_embd]; null without sub-norms
  const float* ffn_norm = nullptr;      // [n_embd]
  const float* ffn_sub_norm = nullptr;  // [n_ff]; null without sub-norms
  I2sMatrix wq;                         // [n_embd] -> [n_embd]
  I2sMatrix wk;                         // [n_embd] -> [n_embd_kv]
  I2sMatrix wv;                         // [n_embd] -> [n_embd_kv]
  I2sMatrix wo;                         // [n_embd] -> [n_embd]
  I2sMatrix w_gate;                     // [n_embd] -> [n_ff]
  I2sMatrix w_up;                       // [n_embd] -> [n_ff]
  I2sMatrix w_down;                     // [n_ff] -> [n_embd]
};

struct Weights {
  DenseMatrix token_embd;             // [n_vocab][n_embd]
  DenseMatrix output;                 // the head: token_embd when tied
  const float* output_norm = nullptr; // [n_embd]
  std::vector<LayerWeights> layers;
  // Aligned copies of the tensors whose data in the file is not aligned to their element
  // (general.alignment 1 or 2); the views above point into them.
  std::vector<std::vector<uint8_t>> copies;
  // Every I2_S matrix's codes, copied out of the file; the layers' views point here. Each step
  // streams them all. Through the mapping, how fast depends on how the page cache holds the
  // file: one just written (downloaded, converted) ran tg32 1.23-1.26x slower at 2 threads and
  // 1.61x at 1 than this copy, one read back from disk 1.02-1.03x (2B-4T, 2-vCPU Zen 5 VM,
  // alternated; docs/performance.md). The copy adds about 70 ms to the load.
  ZeroedPages ternary;

  // Set by Model::load: the 8-bit screen of an F16 output head (null: none, exact head only).
  const HeadScreen* head_screen = nullptr;
  // Set by Model::load. Dense rows (embedding lookups, the screened head's exact rows) are
  // copied through it with pread, so a big F16 tensor read a few rows at a time never enters
  // the resident set. Null (weights bound to a File that may move): copied from the mapping.
  const gguf::File* file = nullptr;

  uint64_t bytes_per_token() const; // linear weights + head, read once per decode step
  // Copies rows [first, first + count) of `m` (token_embd or output) to dst.
  void read_rows(const DenseMatrix& m, int64_t first, int64_t count, uint8_t* dst) const;
};

// Views into `file`, which must outlive the result. F32 and F16 data are read in place when
// aligned to their element; otherwise (a legal general.alignment of 1 or 2) from a copy. The
// I2_S codes are read from their copy in `ternary`.
Weights bind_weights(const gguf::File& file, const Config& config);

} // namespace bitnet::model
