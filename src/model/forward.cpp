#include "model/forward.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace bitnet::model {

namespace {

constexpr int64_t kRowGranule = 32; // output rows per work item of a matmul

size_t sz(int64_t n) {
  return static_cast<size_t>(n);
}

} // namespace

// One forward's batch: the queries' positions, the cache they extend, the threads.
struct Transformer::Step {
  int64_t n_tok;
  int64_t pos; // row t is at position pos + t of `cache`, unless the rows are sequences
  KvCache& cache;
  kernels::ThreadPool& pool;
  const Observer* observer;
  // decode_rows: row t is a sequence of its own, at seq_pos[t] of *seq_cache[t].
  std::span<const int64_t> seq_pos = {};
  std::span<KvCache* const> seq_cache = {};

  int64_t pos_of(int64_t t) const { return seq_pos.empty() ? pos + t : seq_pos[sz(t)]; }
  KvCache& cache_of(int64_t t) const { return seq_pos.empty() ? cache : *seq_cache[sz(t)]; }

  // Hands a named tensor (n_rows rows of row_len floats) to the observer, if any.
  void observe(const char* name, int64_t il, const ScratchVector<float>& buf, int64_t n_rows,
               int64_t row_len) const {
    if (!observer) return;
    const std::string full = il < 0 ? std::string(name) : fmt::format("{}-{}", name, il);
    (*observer)(full, std::span<const float>(buf.data(), sz(n_rows * row_len)), n_rows);
  }
};

Transformer::Transformer(const Config& config, const Weights& weights, const kernels::Table& table,
                         int64_t n_batch, int64_t n_ctx, int n_threads)
    : c_(config), w_(weights), k_(table), n_batch_(n_batch), n_ctx_(n_ctx), n_threads_(n_threads),
      attention_(config, table, n_batch, n_ctx, n_threads),
      head_(weights, weights.head_screen, table, n_batch) {
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
  if (k_.i2s_stage && n_batch > 1)
    act_staged_.resize(sz(kernels::i2s_staged_bytes(n_batch, std::max(e, f))));
  act_scale_.resize(sz(n_batch));
  act_sum_.resize(sz(n_batch));
  rope_cs_.resize(sz(n_batch * c_.n_rot));
  embd_row_.resize(w_.token_embd.row_bytes);
}

void Transformer::forward(std::span<const int32_t> tokens, int64_t pos, KvCache& cache,
                          kernels::ThreadPool& pool, bool all_logits, float* logits,
                          const Observer* observer) {
  const Step s{static_cast<int64_t>(tokens.size()), pos, cache, pool, observer};
  const int64_t n_out = layers(s, tokens, all_logits, logits != nullptr);
  if (!logits) return;
  head_.full(h_.data(), n_out, logits, pool);
  if (observer)
    (*observer)("result_output", std::span<const float>(logits, sz(n_out * c_.n_vocab)), n_out);
}

void Transformer::forward_hidden(std::span<const int32_t> tokens, int64_t pos, KvCache& cache,
                                 kernels::ThreadPool& pool, const Observer* observer) {
  const Step s{static_cast<int64_t>(tokens.size()), pos, cache, pool, observer};
  layers(s, tokens, false, true);
}

void Transformer::decode_rows(std::span<const int32_t> tokens, std::span<const int64_t> pos,
                              std::span<KvCache* const> caches, kernels::ThreadPool& pool) {
  if (tokens.empty() || pos.size() != tokens.size() || caches.size() != tokens.size())
    throw Error(ErrorKind::invalid_argument,
                fmt::format("decode of {} tokens at {} positions in {} caches", tokens.size(),
                            pos.size(), caches.size()));
  const Step s{static_cast<int64_t>(tokens.size()), 0, *caches[0], pool, nullptr, pos, caches};
  layers(s, tokens, true, true);
}

void Transformer::set_hidden(std::span<const float> h) {
  std::copy(h.begin(), h.end(), h_.begin());
}

// The layers for all rows or only the last (returns how many go on), then with output_norm
// their output norm into h_: the head's input.
int64_t Transformer::layers(const Step& s, std::span<const int32_t> tokens, bool all_rows,
                            bool output_norm) {
  check(s, tokens);
  const int64_t n_tok = s.n_tok;
  const int64_t e = c_.n_embd;

  embed(tokens);
  // RoPE's angles, once per position for every layer
  for (int64_t t = 0; t < n_tok; ++t)
    kernels::rope_cos_sin(s.pos_of(t), c_.n_rot, c_.rope_base, rope_cs_.data() + t * c_.n_rot);

  // Only the last row goes past the last attention when only its logits are wanted.
  const int64_t n_out = all_rows ? n_tok : 1;
  for (int64_t il = 0; il < c_.n_layer; ++il) {
    const bool last = il == c_.n_layer - 1;
    attention_block(s, il, last ? n_out : n_tok);
    ffn_block(s, il, last ? n_out : n_tok);
  }

  if (!output_norm) return n_out;
  // The head's input: RMSNorm(x) ⊙ output_norm
  rows(s, n_out, [&](int64_t t0, int64_t t1) {
    k_.rmsnorm(x_.data() + t0 * e, t1 - t0, w_.output_norm, e, c_.rms_eps, h_.data() + t0 * e);
  });
  s.observe("result_norm", -1, h_, n_out, e);
  return n_out;
}

// Throws unless the batch fits the scratch, the cache and the vocabulary.
void Transformer::check(const Step& s, std::span<const int32_t> tokens) const {
  const int64_t n_tok = s.n_tok;
  if (n_tok < 1 || n_tok > n_batch_)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("forward of {} tokens (batch size {})", n_tok, n_batch_));
  for (int64_t t = 0; t < n_tok; ++t) {
    const KvCache& cache = s.cache_of(t);
    if (s.pos_of(t) < 0 || s.pos_of(t) >= cache.n_ctx() || cache.n_ctx() > n_ctx_)
      throw Error(ErrorKind::context_overflow,
                  fmt::format("positions {}..{} do not fit a context of {}", s.pos_of(0),
                              s.pos_of(t) + 1, cache.n_ctx()));
  }
  if (s.pool.size() > n_threads_)
    throw Error(ErrorKind::invalid_argument, "thread pool larger than the forward's scratch");
  for (int32_t id : tokens)
    if (id < 0 || id >= c_.n_vocab)
      throw Error(ErrorKind::invalid_input,
                  fmt::format("token id {} is outside the vocabulary [0, {})", id, c_.n_vocab));
}

// x[t] = token_embd[tokens[t]], each row copied out of the file (read_rows) rather than read
// in place, so a tied head's pages stay out of the resident set.
void Transformer::embed(std::span<const int32_t> tokens) {
  const DenseMatrix& embd = w_.token_embd;
  const int64_t e = c_.n_embd;
  for (size_t t = 0; t < tokens.size(); ++t) {
    float* xt = x_.data() + static_cast<int64_t>(t) * e;
    w_.read_rows(embd, tokens[t], 1, embd_row_.data());
    if (embd.type == gguf::TensorType::Q8_0)
      k_.q8_0_to_f32(embd_row_.data(), e, xt);
    else
      k_.f16_to_f32(reinterpret_cast<const uint16_t*>(embd_row_.data()), e, xt);
  }
}

// x += Wo · SubNorm(softmax(q·Kᵀ/√d + mask) · V), with q, k, v = RoPE(Wq·h), RoPE(Wk·h), Wv·h
// and h = RMSNorm(x) ⊙ attn_norm. After the last layer's attention only the n_out rows whose
// logits are wanted go on (ggml's get_rows(inp_out_ids)).
void Transformer::attention_block(const Step& s, int64_t il, int64_t n_out) {
  const LayerWeights& l = w_.layers[sz(il)];
  const int64_t e = c_.n_embd, ekv = c_.n_embd_kv(), n = s.n_tok;
  norm_quantize(s, x_.data(), l.attn_norm, n, e, h_.data());
  s.observe("attn_norm", il, h_, n, e);
  matmuls(s, {{&l.wq, q_.data()}, {&l.wk, kv_k_.data()}, {&l.wv, kv_v_.data()}}, n);
  s.observe("Qcur", il, q_, n, e);
  s.observe("Kcur", il, kv_k_, n, ekv);
  s.observe("Vcur", il, kv_v_, n, ekv);
  rope_and_cache(s, il);
  s.observe("Qcur-rope", il, q_, n, e);
  s.observe("Kcur-rope", il, kv_k_, n, ekv);
  if (s.seq_pos.empty())
    attention_.run(q_.data(), n, s.pos, s.cache, il, attn_.data(), s.pool);
  else {
    // Each sequence's run of rows attends over its own cache, as its micro-batch alone would;
    // the sequences of one row (decode steps) together.
    std::vector<Attention::DecodeRow> singles;
    for (int64_t t = 0, end = 0; t < n; t = end) {
      for (end = t + 1; end < n && &s.cache_of(end) == &s.cache_of(t);)
        ++end;
      if (end - t == 1)
        singles.push_back({t, s.pos_of(t), &s.cache_of(t)});
      else
        attention_.run(q_.data() + t * e, end - t, s.pos_of(t), s.cache_of(t), il,
                       attn_.data() + t * e, s.pool);
    }
    attention_.decode_rows(q_.data(), e, singles, il, attn_.data(), s.pool);
  }
  s.observe("kqv_out", il, attn_, n, e);
  residual(s, il, {&attn_, l.attn_sub_norm, &l.wo, "attn_sub_norm", "attn_o_out", "ffn_inp"}, e, n,
           n_out);
}

// x += Wdown · SubNorm(act(Wgate·g) ⊙ (Wup·g)), g = RMSNorm(x) ⊙ ffn_norm, act = ReLU² or SiLU.
void Transformer::ffn_block(const Step& s, int64_t il, int64_t n) {
  const LayerWeights& l = w_.layers[sz(il)];
  const int64_t e = c_.n_embd, f = c_.n_ff;
  norm_quantize(s, x_.data(), l.ffn_norm, n, e, h_.data());
  s.observe("ffn_norm", il, h_, n, e);
  matmuls(s, {{&l.w_gate, gate_.data()}, {&l.w_up, up_.data()}}, n);
  s.observe("ffn_gate", il, gate_, n, f);
  s.observe("ffn_up", il, up_, n, f);
  rows(s, n, [&](int64_t t0, int64_t t1) { // per row: ggml's silu vectorises within a row
    const auto act = c_.ffn_act == FfnAct::relu_sqr ? k_.relu_sqr_mul : k_.silu_mul;
    for (int64_t t = t0; t < t1; ++t)
      act(gate_.data() + t * f, up_.data() + t * f, f, ffn_.data() + t * f);
  });
  s.observe("ffn_out", il, ffn_, n, f);
  residual(s, il, {&ffn_, l.ffn_sub_norm, &l.w_down, "ffn_sub_norm", "ffn_down", "l_out"}, f, n, n);
}

// x[r] = x[first + r] + W · SubNorm(in)[first + r] for the last n_out of n rows (first =
// n - n_out; all n when every row goes on). The sub-norm (bitnet graphs, in place) and W run
// over all n rows, as in the reference graph.
void Transformer::residual(const Step& s, int64_t il, const Residual& r, int64_t k, int64_t n,
                           int64_t n_out) {
  const int64_t e = c_.n_embd, first = n - n_out;
  norm_quantize(s, r.in->data(), r.sub_norm, n, k, r.in->data());
  if (r.sub_norm) s.observe(r.norm_name, il, *r.in, n, k);
  matmuls(s, {{r.w, proj_.data()}}, n);
  s.observe(r.proj_name, il, proj_, n, e);
  k_.add(x_.data() + first * e, proj_.data() + first * e, n_out * e, x_.data());
  s.observe(r.sum_name, il, x_, n_out, e);
}

// out[t] = RMSNorm(in[t]) ⊙ weight (in place when out is in), then out[t] quantized to int8
// for the next matmul; without a weight only the quantization.
void Transformer::norm_quantize(const Step& s, const float* in, const float* weight, int64_t n,
                                int64_t k, float* out) {
  rows(s, n, [&](int64_t t0, int64_t t1) {
    if (weight) k_.rmsnorm(in + t0 * k, t1 - t0, weight, k, c_.rms_eps, out + t0 * k);
    const float* x = weight ? out : in;
    for (int64_t t = t0; t < t1; ++t)
      k_.quantize_act(x + t * k, k, act_q_.data() + t * k, &act_scale_[sz(t)], &act_sum_[sz(t)]);
    if (!act_staged_.empty() && n > 1)
      k_.i2s_stage(act_q_.data(), t0, t1, n, k, act_staged_.data());
  });
}

// out_i[t][r] = W_i · (the n rows quantized last by norm_quantize), for every matrix at once:
// one parallel region over all their rows.
void Transformer::matmuls(const Step& s, std::initializer_list<MatOut> mats, int64_t n) {
  int64_t total = 0;
  for (const MatOut& m : mats)
    total += m.w->rows;
  s.pool.parallel_for(total, kRowGranule, [&](int64_t r0, int64_t r1) {
    int64_t base = 0; // first row of the matrix in the concatenation
    for (const MatOut& m : mats) {
      const I2sMatrix& w = *m.w;
      const int64_t lo = std::max(r0, base) - base, hi = std::min(r1, base + w.rows) - base;
      base += w.rows;
      if (lo >= hi) continue;
      if (n == 1)
        k_.i2s_gemv(w.data, w.scale, w.k, lo, hi, act_q_.data(), act_scale_[0], act_sum_[0], m.out);
      else if (!act_staged_.empty())
        k_.i2s_gemm_staged(w.data, w.scale, w.k, lo, hi, act_q_.data(), act_staged_.data(),
                           act_scale_.data(), act_sum_.data(), n, m.out, w.rows);
      else
        k_.i2s_gemm(w.data, w.scale, w.k, lo, hi, act_q_.data(), act_scale_.data(), act_sum_.data(),
                    n, m.out, w.rows);
    }
  });
}

// RoPE on each token's q and k at its position, then its k and v into the cache.
void Transformer::rope_and_cache(const Step& s, int64_t il) {
  const int64_t e = c_.n_embd, ekv = c_.n_embd_kv(), hd = c_.head_dim;
  rows(s, s.n_tok, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* cs = rope_cs_.data() + t * c_.n_rot;
      float* kt = kv_k_.data() + t * ekv;
      k_.rope(q_.data() + t * e, c_.n_head, hd, c_.n_rot, cs, c_.rope_neox);
      k_.rope(kt, c_.n_head_kv, hd, c_.n_rot, cs, c_.rope_neox);
      store_kv(s.cache_of(t), il, s.pos_of(t), kt, kv_v_.data() + t * ekv);
    }
  });
}

// k as row p of the layer's K, v as column p of its transposed V (as llama.cpp keeps V
// without flash attention), so ·V reads each value row contiguously over the positions.
void Transformer::store_kv(KvCache& cache, int64_t il, int64_t p, const float* k,
                           const float* v) const {
  const int64_t ekv = c_.n_embd_kv(), ctx = cache.v_stride();
  if (cache.is_f16()) {
    k_.f32_to_f16(k, ekv, cache.k16(il) + p * ekv);
    uint16_t half[64];
    for (int64_t d0 = 0; d0 < ekv; d0 += 64) {
      const int64_t m = std::min<int64_t>(64, ekv - d0);
      k_.f32_to_f16(v + d0, m, half);
      for (int64_t d = 0; d < m; ++d)
        cache.v16(il)[(d0 + d) * ctx + p] = half[d];
    }
  } else {
    std::memcpy(cache.k32(il) + p * ekv, k, sz(ekv) * sizeof(float));
    for (int64_t d = 0; d < ekv; ++d)
      cache.v32(il)[d * ctx + p] = v[d];
  }
}

// fn(t0, t1) over the batch's rows [0, n), split over the threads for a batch; a single row
// (decoding) is too little work to be worth waking them.
void Transformer::rows(const Step& s, int64_t n,
                       const std::function<void(int64_t, int64_t)>& fn) const {
  if (n == 1)
    fn(0, 1);
  else
    s.pool.parallel_for(n, 1, fn);
}

uint64_t Transformer::scratch_bytes() const {
  uint64_t floats = 0;
  for (const ScratchVector<float>* v :
       {&x_, &h_, &q_, &kv_k_, &kv_v_, &attn_, &proj_, &gate_, &up_, &ffn_, &act_scale_, &rope_cs_})
    floats += v->size();
  return floats * sizeof(float) + act_q_.size() + act_staged_.size() +
         act_sum_.size() * sizeof(int32_t) + embd_row_.size() + head_.scratch_bytes() +
         attention_.scratch_bytes();
}

} // namespace bitnet::model
