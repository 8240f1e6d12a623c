// Model hyper-parameters and graph variant read from GGUF metadata, with every check that
// decides whether a file can run (docs/gguf-format.md §4 and §5, tests/data/reference/README.md
// "Graph facts").
#pragma once

#include <cstdint>
#include <string>

#include "gguf/gguf.hpp"

namespace bitnet::model {

enum class Arch {
  bitnet_b158, // "bitnet-b1.58" (2B-4T): sub-norms, ReLU², NEOX rope, head = token_embd
  bitnet_25,   // "bitnet-25": same graph as bitnet-b1.58
  bitnet,      // "bitnet" (1bitLLM): sub-norms, SiLU, NEOX rope, head = token_embd
  llama,       // "llama" with ternary weights: no sub-norms, SiLU, NORM rope, output.weight
};
const char* to_string(Arch arch) noexcept; // the GGUF architecture string

enum class FfnAct { relu_sqr, silu };

struct Config {
  Arch arch = Arch::bitnet_b158;
  int64_t n_embd = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t n_ff = 0;
  int64_t n_layer = 0;
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int64_t n_rot = 0;    // rope dims (== head_dim)
  int64_t head_dim = 0; // n_embd / n_head
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  bool rope_neox = true;
  FfnAct ffn_act = FfnAct::relu_sqr;
  bool has_sub_norms = true;
  bool tied_output = true;                            // logits from token_embd (else output.weight)
  gguf::TensorType embd_type = gguf::TensorType::F16; // token_embd
  gguf::TensorType output_type = gguf::TensorType::F16; // the head used for logits

  int64_t n_embd_kv() const { return n_head_kv * head_dim; }
};

// Reads and validates the configuration: known arch (else Error(unsupported)), sane ranges,
// heads dividing the width, kv heads dividing heads, and every tensor the graph needs
// present with the right shape and type (Error(format) or Error(unsupported) naming it).
Config load_config(const gguf::File& file);

} // namespace bitnet::model
