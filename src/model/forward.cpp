#include "model/forward.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "util/fp16.hpp"

namespace bitnet::model {

namespace {

constexpr int64_t kRowGranule = 32; // output rows per work item of a matmul

size_t sz(int64_t n) {
  return static_cast<size_t>(n);
}

// f32 dot for the F32 KV cache (ggml's vec_dot_f32 has no rounding of operands).
float dot_f32(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i)
    sum += a[i] * b[i];
  return sum;
}

} // namespace

Transformer::Transformer(const Config& config, const Weights& weights, const kernels::Table& table,
                         int64_t n_batch, int64_t n_ctx, int n_threads)
    : c_(config), w_(weights), k_(table), n_batch_(n_batch), n_ctx_(n_ctx), n_threads_(n_threads) {
  if (n_batch < 1 || n_batch > 1 << 16)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("batch size {} is outside [1, 65536]", n_batch));
  if (n_threads < 1) throw Error(ErrorKind::invalid_argument, "thread count must be >= 1");
  const int64_t e = c_.n_embd, f = c_.n_ff, ekv = c_.n_embd_kv();
  x_.resize(sz(n_batch * e));
  h_.resize(sz(n_batch * e));
  q_.resize(sz(n_batch * e));
  kv_k_.resize(sz(n_batch * ekv));
  kv_v_.resize(sz(n_batch * ekv));
  attn_.resize(sz(n_batch * e));
  proj_.resize(sz(n_batch * e));
  gate_.resize(sz(n_batch * f));
  up_.resize(sz(n_batch * f));
  ffn_.resize(sz(n_batch * f));
  act_q_.resize(sz(n_batch * std::max(e, f)));
  act_scale_.resize(sz(n_batch));
  act_sum_.resize(sz(n_batch));
  rope_cs_.resize(sz(n_batch * c_.n_rot));
  const int64_t span = std::max(n_ctx, c_.head_dim);
  const int64_t group = c_.n_head / c_.n_head_kv;
  scores_.resize(sz(n_threads * group * span));
  half_.resize(sz(n_threads * group * (span + c_.head_dim)));
  if (w_.output.type == gguf::TensorType::Q8_0)
    head_xq8_.resize(sz(n_batch) * gguf::tensor_nbytes(gguf::TensorType::Q8_0, sz(e)));
  else
    head_x16_.resize(sz(n_batch * e));
}

void Transformer::quantize_rows(const float* x, int64_t n_rows, int64_t k,
                                kernels::ThreadPool& pool) {
  const auto rows = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      k_.quantize_act(x + t * k, k, act_q_.data() + t * k, &act_scale_[sz(t)], &act_sum_[sz(t)]);
  };
  if (n_rows == 1)
    rows(0, 1);
  else
    pool.parallel_for(n_rows, 1, rows);
}

// out[t][r] = W·x_t for the rows quantized last by quantize_rows.
void Transformer::matmul(const I2sMatrix& w, int64_t n_rows, float* out,
                         kernels::ThreadPool& pool) {
  if (n_rows == 1) {
    pool.parallel_for(w.rows, kRowGranule, [&](int64_t r0, int64_t r1) {
      k_.i2s_gemv(w.data, w.scale, w.k, r0, r1, act_q_.data(), act_scale_[0], act_sum_[0], out);
    });
  } else {
    pool.parallel_for(w.rows, kRowGranule, [&](int64_t r0, int64_t r1) {
      k_.i2s_gemm(w.data, w.scale, w.k, r0, r1, act_q_.data(), act_scale_.data(), act_sum_.data(),
                  n_rows, out, w.rows);
    });
  }
}

// Causal attention of n_tok queries (q_, positions pos..) over the cache, into attn_.
// Numerics of the reference (A.trace.json agrees bit for bit): K·q with q rounded to f16
// (ggml_vec_dot_f16), softmax(scale · K·q + mask) over the KV length padded to 32 as
// llama.cpp pads n_kv (masked entries are -inf, so their probabilities are 0; the cache is
// zero-initialised), then ·V over that padded length.
// For a batch (prefill) ggml hands the contiguous f32 probabilities to tinyBLAS without
// rounding; a single token's probabilities are rounded to f16 (ggml_vec_dot_f16).
void Transformer::attention(int64_t il, int64_t n_tok, int64_t pos, KvCache& cache,
                            kernels::ThreadPool& pool) {
  const int64_t hd = c_.head_dim, e = c_.n_embd, ekv = c_.n_embd_kv();
  const int64_t group = c_.n_head / c_.n_head_kv; // query heads sharing one KV head
  const int64_t ctx = cache.n_ctx();
  const int64_t n_pad = std::min(ctx, (pos + n_tok + 31) / 32 * 32);
  const bool tinyblas = n_tok > 1 && n_pad % 16 == 0;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const bool f16 = cache.is_f16();
  const int64_t span = std::max(n_ctx_, hd);
  // One work item is one token's KV head: each K and V row is read once for all `group`
  // query heads.
  const int64_t n_items = n_tok * c_.n_head_kv;
  pool.run([&](int ti, int nt) {
    float* scores = scores_.data() + sz(ti * group * span);      // [group][n_pad]
    uint16_t* p16 = half_.data() + sz(ti * group * (span + hd)); // [group][n_pad] probs in f16
    uint16_t* q16 = p16 + group * span;                          // [group][head_dim] queries
    for (int64_t item = n_items * ti / nt; item < n_items * (ti + 1) / nt; ++item) {
      const int64_t t = item / c_.n_head_kv, g = item % c_.n_head_kv;
      const int64_t n_kv = pos + t + 1;
      const int64_t h0 = g * group;                 // first query head of this KV head
      float* out = attn_.data() + t * e + h0 * hd;  // [group][head_dim]
      const float* q = q_.data() + t * e + h0 * hd; // [group][head_dim]
      if (!f16) {
        const float* kc = cache.k32(il) + g * hd;
        const float* vc = cache.v32(il) + g * hd * ctx;
        for (int64_t h = 0; h < group; ++h) {
          float* s = scores + h * span;
          for (int64_t j = 0; j < n_kv; ++j)
            s[j] = dot_f32(kc + j * ekv, q + h * hd, hd);
          std::fill(s + n_kv, s + n_pad, -INFINITY);
          k_.softmax(s, n_pad, scale);
          for (int64_t d = 0; d < hd; ++d)
            out[h * hd + d] = dot_f32(vc + d * ctx, s, n_kv);
        }
        continue;
      }
      k_.f32_to_f16(q, group * hd, q16); // ggml rounds the f32 operand of an F16 product
      const uint16_t* kc = cache.k16(il) + g * hd;
      for (int64_t j = 0; j < n_kv; ++j)
        for (int64_t h = 0; h < group; ++h)
          scores[h * span + j] = k_.f16_dot(kc + j * ekv, q16 + h * hd, hd);
      for (int64_t h = 0; h < group; ++h) {
        float* s = scores + h * span;
        std::fill(s + n_kv, s + n_pad, -INFINITY); // the causal mask over the padded length
        k_.softmax(s, n_pad, scale);
        if (!tinyblas) k_.f32_to_f16(s, n_pad, p16 + h * span);
      }
      const uint16_t* vc = cache.v16(il) + g * hd * ctx;
      for (int64_t d = 0; d < hd; ++d)
        for (int64_t h = 0; h < group; ++h)
          out[h * hd + d] = tinyblas ? k_.f16_f32_dot(vc + d * ctx, scores + h * span, n_pad)
                                     : k_.f16_dot(vc + d * ctx, p16 + h * span, n_pad);
    }
  });
}

// logits[t][v] = head_v · h_t for the first n_rows rows of h_ (already output-normed), as
// ggml's mul_mat: Q8_0 quantizes the f32 operand first; F16 rounds a single row to f16
// (ggml_vec_dot_f16) but hands several rows to tinyBLAS unrounded.
void Transformer::head(int64_t n_rows, float* logits, kernels::ThreadPool& pool) {
  const DenseMatrix& w = w_.output;
  if (w.type == gguf::TensorType::Q8_0) {
    const uint64_t row_q8 = gguf::tensor_nbytes(gguf::TensorType::Q8_0, sz(w.k));
    for (int64_t t = 0; t < n_rows; ++t)
      k_.quantize_q8_0(h_.data() + t * w.k, w.k, head_xq8_.data() + sz(t) * row_q8);
    pool.parallel_for(w.rows, kRowGranule, [&](int64_t r0, int64_t r1) {
      k_.q8_0_gemm(w.data, w.k, r0, r1, head_xq8_.data(), n_rows, logits, w.rows);
    });
  } else if (n_rows > 1 && w.k % 16 == 0) { // tinyBLAS: the f32 rows unrounded
    const auto* w16 = reinterpret_cast<const uint16_t*>(w.data);
    pool.parallel_for(w.rows, kRowGranule, [&](int64_t r0, int64_t r1) {
      k_.f16_f32_gemm(w16, w.k, r0, r1, h_.data(), n_rows, logits, w.rows);
    });
  } else {
    k_.f32_to_f16(h_.data(), n_rows * w.k, head_x16_.data());
    const auto* w16 = reinterpret_cast<const uint16_t*>(w.data);
    pool.parallel_for(w.rows, kRowGranule, [&](int64_t r0, int64_t r1) {
      k_.f16_gemm(w16, w.k, r0, r1, head_x16_.data(), n_rows, logits, w.rows);
    });
  }
}

void Transformer::forward(std::span<const int32_t> tokens, int64_t pos, KvCache& cache,
                          kernels::ThreadPool& pool, bool all_logits, float* logits,
                          const Observer* observer) {
  const auto n_tok = static_cast<int64_t>(tokens.size());
  if (n_tok < 1 || n_tok > n_batch_)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("forward of {} tokens (batch size {})", n_tok, n_batch_));
  if (pos < 0 || pos + n_tok > cache.n_ctx() || cache.n_ctx() > n_ctx_)
    throw Error(ErrorKind::context_overflow,
                fmt::format("positions {}..{} do not fit a context of {}", pos, pos + n_tok,
                            cache.n_ctx()));
  if (pool.size() > n_threads_)
    throw Error(ErrorKind::invalid_argument, "thread pool larger than the forward's scratch");
  for (int32_t id : tokens)
    if (id < 0 || id >= c_.n_vocab)
      throw Error(ErrorKind::invalid_input,
                  fmt::format("token id {} is outside the vocabulary [0, {})", id, c_.n_vocab));

  const int64_t e = c_.n_embd, f = c_.n_ff, ekv = c_.n_embd_kv(), hd = c_.head_dim;
  const int64_t ctx = cache.n_ctx();
  const auto observe = [&](const char* name, int64_t il, const std::vector<float>& buf,
                           int64_t n_rows, int64_t row_len) {
    if (!observer) return;
    const std::string full = il < 0 ? std::string(name) : fmt::format("{}-{}", name, il);
    (*observer)(full, std::span<const float>(buf.data(), sz(n_rows * row_len)), n_rows);
  };
  const auto rmsnorm_rows = [&](const std::vector<float>& in, const float* weight, int64_t n_rows,
                                int64_t n, std::vector<float>& out) {
    for (int64_t t = 0; t < n_rows; ++t)
      k_.rmsnorm(in.data() + t * n, weight, n, c_.rms_eps, out.data() + t * n);
  };

  // RoPE's angles, once per position for every layer
  for (int64_t t = 0; t < n_tok; ++t)
    kernels::rope_cos_sin(pos + t, c_.n_rot, c_.rope_base, rope_cs_.data() + t * c_.n_rot);

  // Embedding: x[t] = token_embd[tokens[t]]
  const DenseMatrix& embd = w_.token_embd;
  for (int64_t t = 0; t < n_tok; ++t) {
    const uint8_t* row = embd.data + sz(tokens[sz(t)]) * embd.row_bytes;
    if (embd.type == gguf::TensorType::Q8_0)
      k_.q8_0_to_f32(row, e, x_.data() + t * e);
    else
      k_.f16_to_f32(reinterpret_cast<const uint16_t*>(row), e, x_.data() + t * e);
  }

  int64_t n_rows = n_tok; // rows still computed; the last layer may keep only the last one
  for (int64_t il = 0; il < c_.n_layer; ++il) {
    const LayerWeights& l = w_.layers[sz(il)];

    // 1. h = RMSNorm(x) ⊙ attn_norm
    rmsnorm_rows(x_, l.attn_norm, n_tok, e, h_);
    observe("attn_norm", il, h_, n_tok, e);

    // 2. q, k, v = W·h (one int8 quantization of h serves all three)
    quantize_rows(h_.data(), n_tok, e, pool);
    matmul(l.wq, n_tok, q_.data(), pool);
    matmul(l.wk, n_tok, kv_k_.data(), pool);
    matmul(l.wv, n_tok, kv_v_.data(), pool);
    observe("Qcur", il, q_, n_tok, e);
    observe("Kcur", il, kv_k_, n_tok, ekv);
    observe("Vcur", il, kv_v_, n_tok, ekv);

    // 3. RoPE on q and k at their positions
    for (int64_t t = 0; t < n_tok; ++t) {
      const float* cs = rope_cs_.data() + t * c_.n_rot;
      k_.rope(q_.data() + t * e, c_.n_head, hd, c_.n_rot, cs, c_.rope_neox);
      k_.rope(kv_k_.data() + t * ekv, c_.n_head_kv, hd, c_.n_rot, cs, c_.rope_neox);
    }
    observe("Qcur-rope", il, q_, n_tok, e);
    observe("Kcur-rope", il, kv_k_, n_tok, ekv);

    // 4. append k (row pos+t) and v (column pos+t of the transposed V) to the cache
    for (int64_t t = 0; t < n_tok; ++t) {
      const float* kt = kv_k_.data() + t * ekv;
      const float* vt = kv_v_.data() + t * ekv;
      if (cache.is_f16()) {
        k_.f32_to_f16(kt, ekv, cache.k16(il) + (pos + t) * ekv);
        uint16_t* vc = cache.v16(il) + pos + t;
        for (int64_t d = 0; d < ekv; ++d)
          vc[d * ctx] = fp32_to_fp16(vt[d]);
      } else {
        std::memcpy(cache.k32(il) + (pos + t) * ekv, kt, sz(ekv) * sizeof(float));
        float* vc = cache.v32(il) + pos + t;
        for (int64_t d = 0; d < ekv; ++d)
          vc[d * ctx] = vt[d];
      }
    }

    // 5. causal GQA attention
    attention(il, n_tok, pos, cache, pool);
    observe("kqv_out", il, attn_, n_tok, e);

    // 6. a = RMSNorm(attn) ⊙ attn_sub_norm (bitnet graphs), then x += Wo·a
    const std::vector<float>* a = &attn_;
    if (l.attn_sub_norm) {
      rmsnorm_rows(attn_, l.attn_sub_norm, n_tok, e, h_);
      observe("attn_sub_norm", il, h_, n_tok, e);
      a = &h_;
    }
    quantize_rows(a->data(), n_tok, e, pool);
    matmul(l.wo, n_tok, proj_.data(), pool);
    observe("attn_o_out", il, proj_, n_tok, e);

    // After the last attention only the rows whose logits are wanted matter (as the
    // fork's get_rows(inp_out_ids)).
    if (il == c_.n_layer - 1 && !all_logits && n_tok > 1) {
      std::memcpy(x_.data(), x_.data() + (n_tok - 1) * e, sz(e) * sizeof(float));
      std::memcpy(proj_.data(), proj_.data() + (n_tok - 1) * e, sz(e) * sizeof(float));
      n_rows = 1;
    }
    k_.add(x_.data(), proj_.data(), n_rows * e, x_.data());
    observe("ffn_inp", il, x_, n_rows, e);

    // 7. g = RMSNorm(x) ⊙ ffn_norm
    rmsnorm_rows(x_, l.ffn_norm, n_rows, e, h_);
    observe("ffn_norm", il, h_, n_rows, e);

    // 8. f = act(Wgate·g) ⊙ (Wup·g), act = ReLU² or SiLU
    quantize_rows(h_.data(), n_rows, e, pool);
    matmul(l.w_gate, n_rows, gate_.data(), pool);
    matmul(l.w_up, n_rows, up_.data(), pool);
    observe("ffn_gate", il, gate_, n_rows, f);
    observe("ffn_up", il, up_, n_rows, f);
    if (c_.ffn_act == FfnAct::relu_sqr)
      k_.relu_sqr_mul(gate_.data(), up_.data(), n_rows * f, ffn_.data());
    else
      for (int64_t t = 0; t < n_rows; ++t) // per row: ggml's silu vectorises within a row
        k_.silu_mul(gate_.data() + t * f, up_.data() + t * f, f, ffn_.data() + t * f);
    observe("ffn_out", il, ffn_, n_rows, f);

    // 9. f = RMSNorm(f) ⊙ ffn_sub_norm (bitnet graphs; gate_ is free again), 10. x += Wdown·f
    const std::vector<float>* fin = &ffn_;
    if (l.ffn_sub_norm) {
      rmsnorm_rows(ffn_, l.ffn_sub_norm, n_rows, f, gate_);
      observe("ffn_sub_norm", il, gate_, n_rows, f);
      fin = &gate_;
    }
    quantize_rows(fin->data(), n_rows, f, pool);
    matmul(l.w_down, n_rows, proj_.data(), pool);
    observe("ffn_down", il, proj_, n_rows, e);
    k_.add(x_.data(), proj_.data(), n_rows * e, x_.data());
    observe("l_out", il, x_, n_rows, e);
  }

  if (!logits) return;
  // logits = head · (RMSNorm(x) ⊙ output_norm)
  rmsnorm_rows(x_, w_.output_norm, n_rows, e, h_);
  observe("result_norm", -1, h_, n_rows, e);
  head(n_rows, logits, pool);
  if (observer)
    (*observer)("result_output", std::span<const float>(logits, sz(n_rows * c_.n_vocab)), n_rows);
}

} // namespace bitnet::model
