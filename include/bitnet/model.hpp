// A loaded model: the mapped GGUF file, its configuration, weights and tokenizer.
// Shared (std::shared_ptr) so several sessions can run on one mapping.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/tokenizer.hpp"

namespace bitnet {

namespace detail {
struct Access; // the library's own door to the state behind this API (src/util/access.hpp)
}

// How a decode step computes the logits it samples from (README "Head modes").
enum class HeadMode {
  // An 8-bit copy of the F16 head, built at load, bounds every logit rigorously; only the rows
  // that can reach the sampler's top k are computed exactly. The same logits for those rows,
  // so the same tokens as `exact`, for about half the head's bytes.
  screened,
  exact, // every logit, every step (also what any head other than F16 gets)
};
const char* to_string(HeadMode mode) noexcept; // "screened" | "exact"

struct ModelOptions {
  // "" = as the file says (tokenizer.ggml.pre, or bitnet.cpp's default splitter when absent);
  // "llama3" (aliases llama-bpe, llama-v3) or "default" override it.
  std::string pretokenizer;
  // "" = from tokenizer.chat_template; "bitnet" or "llama3" force a format.
  std::string chat_template;
  // screened: build the head's screen at load (F16 heads; ~0.35 GB on 2B-4T), so sessions
  // can use HeadMode::screened. exact: no screen.
  HeadMode head = HeadMode::screened;
  // Lay the screen out for decode steps of several sequences at once (a server's parallel
  // slots, decode_batch): such steps run 1.13-1.17x faster and single-sequence ones 2-4 %
  // slower than with the default layout (2-vCPU Zen 5, alternated runs). The same tokens
  // either way. `bitnet serve` sets it with --parallel > 1.
  bool batched_decode = false;
  // Threads that build the screen: 0 = default_threads(). Error(invalid_argument) if < 0.
  int32_t n_threads = 0;
};

// A matrix the forward pass multiplies by once per token: the ternary (I2_S) linear weights of
// every layer, then the output head.
struct MatrixInfo {
  std::string name;   // GGUF tensor name, e.g. "blk.0.attn_q.weight"
  std::string type;   // "I2_S", "F16", "Q8_0"
  int32_t layer = -1; // block index; -1 for the output head
  int64_t rows = 0;   // outputs
  int64_t k = 0;      // inputs per output
  uint64_t bytes = 0; // the tensor's bytes in the file
};

struct ModelInfo {
  std::string path;
  uint64_t file_size = 0;
  std::string architecture; // general.architecture: bitnet-b1.58, bitnet-25, bitnet, llama
  std::string name;         // general.name ("" when absent)
  uint64_t n_params = 0;    // elements of every tensor
  int32_t n_vocab = 0;
  int32_t n_ctx_train = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t n_ff = 0;
  int32_t head_dim = 0;
  int32_t n_rot = 0;
  float rope_base = 0.0f;
  float rms_eps = 0.0f;
  std::string ffn_activation; // "relu2" | "silu"
  std::string rope_type;      // "neox" | "norm"
  bool tied_output = true;    // logits from token_embd
  std::string embd_type;      // token_embd type: "F16" | "Q8_0"
  std::string output_type;    // type of the head actually used
  // Bytes every decode step reads: all linear weights plus the output head (for the
  // bandwidth floor); the KV cache read comes on top.
  uint64_t weight_bytes_per_token = 0;
  uint64_t head_bytes = 0;        // of those, the output head's (what an exact step reads)
  uint64_t head_row_bytes = 0;    // one row of the head (a screened step reads its candidates)
  uint64_t head_screen_bytes = 0; // the screen a screened step reads (0: no screen)
  // Multiply-accumulates of the I2_S matmuls per token: rows·k of every ternary matrix
  // (attention scores and the head not counted).
  uint64_t i2s_macs_per_token = 0;
  std::vector<MatrixInfo> matrices; // layer by layer in file order, then the head
  double load_ms = 0.0;
};

struct ChatMessage {
  std::string role; // system | user | assistant
  std::string content;
};

class Model {
public:
  // Maps and validates the file. Throws Error(io|format|unsupported).
  static std::shared_ptr<Model> load(const std::string& path, const ModelOptions& options = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelInfo& info() const;

  const Tokenizer& tokenizer() const;

  // Chat template rendering ("bitnet" or "llama3" format).
  const std::string& chat_template() const;
  std::string render_chat(std::span<const ChatMessage> messages, bool add_generation_prompt) const;

private:
  friend struct detail::Access;
  struct Impl; // the mapped file, weights and tokenizer (src/model/model_impl.hpp)
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace bitnet
