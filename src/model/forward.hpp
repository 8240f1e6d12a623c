// The transformer forward pass for a batch of tokens at positions [pos, pos + n), exactly
// as bitnet.cpp's graphs (docs/model-math.md §1, docs/gguf-format.md §5): build_bitnet_158
// (bitnet-b1.58, bitnet-25), build_bitnet (bitnet) and build_llama (ternary llama). Each layer is
// an attention block and an FFN block (forward.cpp), each ending in the same residual step.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"
#include "model/attention.hpp"
#include "model/config.hpp"
#include "model/head.hpp"
#include "model/kv_cache.hpp"
#include "model/weights.hpp"

namespace bitnet::model {

// Receives intermediate tensors named as the fork names its graph nodes ("Qcur-0",
// "attn_sub_norm-2", "result_output", ...): n_rows rows of values.size() / n_rows floats.
// Used by the op-trace test to locate a divergence from the reference.
using Observer =
    std::function<void(std::string_view name, std::span<const float> values, int64_t n_rows)>;

class Transformer {
public:
  // Scratch for up to n_batch tokens per forward against caches of up to n_ctx positions.
  // `table` selects the kernel variant (tests run every ISA; normally kernels::table()).
  Transformer(const Config& config, const Weights& weights, const kernels::Table& table,
              int64_t n_batch, int64_t n_ctx, int n_threads);

  int64_t n_batch() const { return n_batch_; }
  // Bytes of scratch held for the forward pass (activations, attention rows).
  uint64_t scratch_bytes() const;

  // Forwards tokens (1..n_batch, ids < n_vocab) at positions [pos, pos + n), writing their
  // K/V into `cache` (pos + n <= cache.n_ctx()). Writes the logits of every token
  // (n × n_vocab) when all_logits, else of the last token only, to `logits`; with null
  // `logits` (a prefill chunk before the last) the output head is skipped.
  void forward(std::span<const int32_t> tokens, int64_t pos, KvCache& cache,
               kernels::ThreadPool& pool, bool all_logits, float* logits,
               const Observer* observer = nullptr);
  // forward() of the last token's row up to the output norm, without the head: hidden() is
  // then its output-normed state, for a head step (head().top: the screened top m, or all).
  void forward_hidden(std::span<const int32_t> tokens, int64_t pos, KvCache& cache,
                      kernels::ThreadPool& pool, const Observer* observer = nullptr);
  std::span<const float> hidden() const { return hidden(0); }
  // One step of several sequences: row t is tokens[t] at position pos[t] of caches[t]
  // (1..n_batch rows, caches of at most n_ctx). A run of consecutive rows of one cache, at
  // consecutive positions, is a micro-batch of that sequence (a decode step is one row per
  // sequence). The I2_S matmuls take all rows at once (integer sums: each row's floats are
  // those of the row alone, and the weights are read once); norms and RoPE run per row and
  // attention per run, as that run's forward alone does, so every row gets exactly the
  // numerics of forwarding its micro-batch alone. hidden(t) is then row t's output-normed
  // state.
  void decode_rows(std::span<const int32_t> tokens, std::span<const int64_t> pos,
                   std::span<KvCache* const> caches, kernels::ThreadPool& pool);
  std::span<const float> hidden(int64_t row) const {
    return {h_.data() + row * c_.n_embd, static_cast<size_t>(c_.n_embd)};
  }
  // Makes `h` (n_embd floats, not a row of hidden() but the first) the last token's
  // output-normed state, as forward_hidden leaves it: a decode_rows row handed to the
  // session it belongs to.
  void set_hidden(std::span<const float> h);
  Head& head() { return head_; }

private:
  struct Step;
  struct MatOut {
    const I2sMatrix* w;
    float* out; // [n][w->rows]
  };
  // A block's closing step: x += W · SubNorm(in), and the trace names of its three tensors.
  struct Residual {
    ScratchVector<float>* in;
    const float* sub_norm; // null without sub-norms
    const I2sMatrix* w;
    const char* norm_name;
    const char* proj_name;
    const char* sum_name;
  };

  // In the order forward.cpp defines them: the pass, then each step it takes.
  int64_t layers(const Step& s, std::span<const int32_t> tokens, bool all_rows, bool output_norm);
  void check(const Step& s, std::span<const int32_t> tokens) const;
  void embed(std::span<const int32_t> tokens);
  void attention_block(const Step& s, int64_t il, int64_t n_out);
  void ffn_block(const Step& s, int64_t il, int64_t n);
  void residual(const Step& s, int64_t il, const Residual& r, int64_t k, int64_t n, int64_t n_out);
  void norm_quantize(const Step& s, const float* in, const float* weight, int64_t n, int64_t k,
                     float* out);
  void matmuls(const Step& s, std::initializer_list<MatOut> mats, int64_t n);
  void rope_and_cache(const Step& s, int64_t il);
  void store_kv(KvCache& cache, int64_t il, int64_t p, const float* k, const float* v) const;
  void rows(const Step& s, int64_t n, const std::function<void(int64_t, int64_t)>& fn) const;

  const Config& c_;
  const Weights& w_;
  const kernels::Table& k_;
  int64_t n_batch_;
  int64_t n_ctx_;
  int n_threads_;
  Attention attention_;

  ScratchVector<float> x_;         // [n_batch][n_embd]   residual stream
  ScratchVector<float> h_;         // [n_batch][n_embd]   attn_norm / ffn_norm / output_norm of x
  ScratchVector<float> q_;         // [n_batch][n_embd]   queries (n_head × head_dim)
  ScratchVector<float> kv_k_;      // [n_batch][n_embd_kv] new keys
  ScratchVector<float> kv_v_;      // [n_batch][n_embd_kv] new values
  ScratchVector<float> attn_;      // [n_batch][n_embd]   attention output, then its sub-norm
  ScratchVector<float> proj_;      // [n_batch][n_embd]   output of attn_output / ffn_down
  ScratchVector<float> gate_;      // [n_batch][n_ff]
  ScratchVector<float> up_;        // [n_batch][n_ff]
  ScratchVector<float> ffn_;       // [n_batch][n_ff]     act(gate) ⊙ up, then its sub-norm
  ScratchVector<float> act_scale_; // [n_batch]
  std::vector<int32_t> act_sum_;   // [n_batch]
  ScratchVector<float> rope_cs_;   // [n_batch][n_rot] RoPE cos, sin of each position
  std::vector<uint8_t> embd_row_;  // [token_embd row bytes] one embedding row read
  // [n_batch][max(n_embd, n_ff)] int8 activations, on cache lines: the I2_S kernels' 64-byte
  // loads of them then never straddle two (AVX-512, 4 tokens from L2: ≈1.3x the time).
  ScratchVector<int8_t> act_q_;
  // act_q_'s n > 1 rows as the variant's gemm reads them, copied once per input (with
  // Table::i2s_stage; else empty).
  ScratchVector<int8_t> act_staged_;
  Head head_;
};

} // namespace bitnet::model
