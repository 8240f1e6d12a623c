#include "model/head.hpp"

namespace bitnet::model {

namespace {

constexpr int64_t kRowGranule = 32; // output rows per work item

size_t sz(int64_t n) {
  return static_cast<size_t>(n);
}

} // namespace

Head::Head(const Weights& weights, const HeadScreen* screen, const kernels::Table& table,
           int64_t n_batch)
    : w_(weights), screen_(weights.output.type == gguf::TensorType::F16 ? screen : nullptr),
      k_(table) {
  const DenseMatrix& w = w_.output;
  if (w.type == gguf::TensorType::Q8_0)
    xq8_.resize(sz(n_batch) * gguf::tensor_nbytes(gguf::TensorType::Q8_0, sz(w.k)));
  else
    x16_.resize(sz(n_batch * w.k));
}

uint64_t Head::scratch_bytes() const {
  return x16_.size() * sizeof(uint16_t) + xq8_.size() +
         (scratch_.lower.size() + scratch_.upper.size()) * sizeof(float) +
         scratch_.rows.size() * sizeof(uint16_t);
}

void Head::full(const float* h, int64_t n_rows, float* logits, kernels::ThreadPool& pool) {
  const DenseMatrix& w = w_.output;
  if (w.type == gguf::TensorType::Q8_0) {
    const uint64_t row_q8 = gguf::tensor_nbytes(gguf::TensorType::Q8_0, sz(w.k));
    for (int64_t t = 0; t < n_rows; ++t)
      k_.quantize_q8_0(h + t * w.k, w.k, xq8_.data() + sz(t) * row_q8);
    pool.parallel_for(w.rows, kRowGranule, [&](int64_t r0, int64_t r1) {
      k_.q8_0_gemm(w.data, w.k, r0, r1, xq8_.data(), n_rows, logits, w.rows);
    });
  } else if (n_rows > 1 && w.k % 16 == 0) { // tinyBLAS: the f32 rows unrounded
    const auto* w16 = reinterpret_cast<const uint16_t*>(w.data);
    pool.parallel_for(w.rows, kRowGranule, [&](int64_t r0, int64_t r1) {
      kernels::f16_f32_gemm(k_, w16, w.k, r0, r1, h, n_rows, logits, w.rows);
    });
  } else {
    k_.f32_to_f16(h, n_rows * w.k, x16_.data());
    const auto* w16 = reinterpret_cast<const uint16_t*>(w.data);
    pool.parallel_for(w.rows, kRowGranule, [&](int64_t r0, int64_t r1) {
      k_.f16_gemm(w16, w.k, r0, r1, x16_.data(), n_rows, logits, w.rows);
    });
  }
}

void Head::top(const float* h, int64_t m, bool screened, const BoundsAdjust& adjust,
               kernels::ThreadPool& pool, HeadTop& out) {
  const DenseMatrix& w = w_.output;
  if (!screened || !screen_) {
    out.ids.resize(sz(w.rows));
    out.logits.resize(sz(w.rows));
    for (int64_t r = 0; r < w.rows; ++r)
      out.ids[sz(r)] = static_cast<int32_t>(r);
    full(h, 1, out.logits.data(), pool);
    out.full = true;
    out.screen_read = false;
    return;
  }
  const HeadQuery query{m, &adjust, &out};
  tops(h, {&query, 1}, pool);
}

void Head::tops(const float* h, std::span<const HeadQuery> queries, kernels::ThreadPool& pool) {
  const DenseMatrix& w = w_.output;
  if (!screen_ || queries.size() * sz(w.k) > x16_.size())
    throw Error(ErrorKind::invalid_argument, "screened head step of too many rows or no screen");
  k_.f32_to_f16(h, static_cast<int64_t>(queries.size()) * w.k, x16_.data());
  const HeadRowReader read = [&](int64_t first, int64_t count, uint16_t* dst) {
    w_.read_rows(w, first, count, reinterpret_cast<uint8_t*>(dst));
  };
  screened_tops(*screen_, x16_.data(), queries, read, k_, pool, scratch_);
}

} // namespace bitnet::model
