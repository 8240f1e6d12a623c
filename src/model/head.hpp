// The output head step: logits from the output-normed hidden state. Either the full exact
// head (every logit, as ggml's mul_mat computes it: perplexity, --head exact, any caller that
// wants all logits) or the screened top m of one token (head_screen.hpp: a decode step's
// sampler needs only the m largest, and gets them bit for bit).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"
#include "model/head_screen.hpp"
#include "model/weights.hpp"

namespace bitnet::model {

class Head {
public:
  // Scratch for up to n_batch rows. `screen` (null: none) must screen weights.output.
  Head(const Weights& weights, const HeadScreen* screen, const kernels::Table& table,
       int64_t n_batch);

  // logits[t][v] = head_v · h_t for n_rows rows of h (n_rows × n_embd → n_rows × n_vocab),
  // as ggml's mul_mat: Q8_0 quantizes the f32 operand first; F16 rounds a single row to f16
  // (ggml_vec_dot_f16) but hands several rows to tinyBLAS unrounded.
  void full(const float* h, int64_t n_rows, float* logits, kernels::ThreadPool& pool);

  // Bytes of scratch held: the operand rows, and a screened step's bounds and rows read.
  uint64_t scratch_bytes() const;

  // Whether top() can screen: an F16 head with a usable screen.
  bool can_screen() const { return screen_ != nullptr && screen_->usable(); }

  // The exact logits of every row that can be among the m largest of one row h, each equal
  // to full()'s. Screened when asked and possible (`adjust` then moves the bounds as the
  // sampler will move the logits; exact rows are read through weights.read_rows, so the F16
  // head's pages stay out of the resident set), else every row by full().
  void top(const float* h, int64_t m, bool screened, const BoundsAdjust& adjust,
           kernels::ThreadPool& pool, HeadTop& out);

  // top() screened for several rows of h at once (1..n_batch, one query each, can_screen()):
  // one pass over the screen for them all, each query's result that of top() on its row.
  void tops(const float* h, std::span<const HeadQuery> queries, kernels::ThreadPool& pool);

private:
  const Weights& w_;
  const HeadScreen* screen_;
  const kernels::Table& k_;
  std::vector<uint16_t> x16_; // [n_batch][n_embd] f16 operand
  std::vector<uint8_t> xq8_;  // [n_batch][n_embd/32 × 34] Q8_0 operand
  HeadScratch scratch_;
};

} // namespace bitnet::model
