// The reference kernels: plain C++ compiled without ISA flags. Every other variant must
// give the same integers, and the same floats where the float expression is the same.
// Numerics follow bitnet.cpp / ggml (facts §2, §3) because model parity depends on them.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/kernel_common.hpp"
#include "kernels/variants.hpp"
#include "util/fp16.hpp"

namespace bitnet::kernels {
namespace {

void quantize_act(const float* x, int64_t n, int8_t* q, float* scale_out, int32_t* sum_out) {
  double max = kActMinMax;
  for (int64_t i = 0; i < n; ++i)
    max = std::max(max, static_cast<double>(std::fabs(x[i])));
  const float scale = act_scale_from_max(max);
  int32_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int v = clamp_i8(nearest_int(x[i] * scale));
    q[i] = static_cast<int8_t>(v);
    sum += v;
  }
  *scale_out = scale;
  *sum_out = sum;
}

// Σ code·q over one packed row of k elements (facts §1 layout).
int32_t i2s_row_dot(const uint8_t* w, int64_t k, const int8_t* q) {
  int32_t sum = 0;
  for (int64_t b = 0; b < k / kI2sBlock; ++b) {
    const uint8_t* wb = w + b * (kI2sBlock / 4);
    const int8_t* qb = q + b * kI2sBlock;
    for (int j = 0; j < 32; ++j) {
      const int byte = wb[j];
      sum += ((byte >> 6) & 3) * qb[j] + ((byte >> 4) & 3) * qb[32 + j] +
             ((byte >> 2) & 3) * qb[64 + j] + (byte & 3) * qb[96 + j];
    }
  }
  return sum;
}

void i2s_gemv(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1, const int8_t* q,
              float act_scale, int32_t act_sum, float* out) {
  for (int64_t r = r0; r < r1; ++r)
    out[r] = i2s_rescale(i2s_row_dot(w + r * (k / 4), k, q), act_sum, act_scale, w_scale);
}

void i2s_gemm(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1, const int8_t* q,
              const float* act_scale, const int32_t* act_sum, int64_t n_tok, float* out,
              int64_t ld_out) {
  for (int64_t t = 0; t < n_tok; ++t)
    i2s_gemv(w, w_scale, k, r0, r1, q + t * k, act_scale[t], act_sum[t], out + t * ld_out);
}

float f16_dot(const uint16_t* a, const uint16_t* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i)
    sum += fp16_to_fp32(a[i]) * fp16_to_fp32(b[i]);
  return sum;
}

void f16_gemm(const uint16_t* w, int64_t k, int64_t r0, int64_t r1, const uint16_t* x,
              int64_t n_tok, float* out, int64_t ld_out) {
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t r = r0; r < r1; ++r)
      out[t * ld_out + r] = f16_dot(w + r * k, x + t * k, k);
}

float q8_block_scale(const uint8_t* block) {
  uint16_t d;
  std::memcpy(&d, block, sizeof d);
  return fp16_to_fp32(d);
}

void quantize_q8_0(const float* x, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const float* xb = x + b * kQ8Block;
    float amax = 0.0f;
    for (int j = 0; j < kQ8Block; ++j)
      amax = std::max(amax, std::fabs(xb[j]));
    const uint16_t d = fp32_to_fp16(q8_d(amax));
    const float id = q8_id(amax);
    uint8_t* ob = out + b * kQ8BlockBytes;
    std::memcpy(ob, &d, sizeof d);
    for (int j = 0; j < kQ8Block; ++j)
      ob[2 + j] = static_cast<uint8_t>(clamp_i8(nearest_int(xb[j] * id)));
  }
}

int32_t q8_block_dot(const uint8_t* a, const uint8_t* b) {
  int32_t sum = 0;
  for (int j = 0; j < kQ8Block; ++j)
    sum += static_cast<int8_t>(a[2 + j]) * static_cast<int8_t>(b[2 + j]);
  return sum;
}

void q8_0_gemm(const uint8_t* w, int64_t k, int64_t r0, int64_t r1, const uint8_t* xq,
               int64_t n_tok, float* out, int64_t ld_out) {
  const int64_t nb = k / kQ8Block;
  for (int64_t t = 0; t < n_tok; ++t) {
    const uint8_t* xt = xq + t * nb * kQ8BlockBytes;
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* wr = w + r * nb * kQ8BlockBytes;
      float sum = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* wb = wr + b * kQ8BlockBytes;
        const uint8_t* xb = xt + b * kQ8BlockBytes;
        sum = q8_accumulate(sum, q8_block_dot(wb, xb), q8_block_scale(wb), q8_block_scale(xb));
      }
      out[t * ld_out + r] = sum;
    }
  }
}

void f32_to_f16(const float* x, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i)
    out[i] = fp32_to_fp16(x[i]);
}

void f16_to_f32(const uint16_t* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i)
    out[i] = fp16_to_fp32(x[i]);
}

void q8_0_to_f32(const uint8_t* x, int64_t n, float* out) {
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const uint8_t* xb = x + b * kQ8BlockBytes;
    const float d = q8_block_scale(xb);
    for (int j = 0; j < kQ8Block; ++j)
      out[b * kQ8Block + j] = static_cast<float>(static_cast<int8_t>(xb[2 + j])) * d;
  }
}

void rmsnorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i)
    sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i)
    out[i] = (x[i] * scale) * weight[i];
}

void softmax(float* x, int64_t n, float scale) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    x[i] *= scale;
    max = std::max(max, x[i]);
  }
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += static_cast<double>(x[i]);
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i)
    x[i] *= inv;
}

void relu_sqr_mul(const float* g, const float* u, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float r = g[i] > 0.0f ? g[i] : 0.0f;
    out[i] = (r * r) * u[i];
  }
}

void silu_mul(const float* g, const float* u, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i)
    out[i] = (g[i] / (1.0f + std::exp(-g[i]))) * u[i];
}

void add(const float* a, const float* b, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i)
    out[i] = a[i] + b[i];
}

} // namespace

void rope(float* x, int64_t n_head, int64_t head_dim, int64_t n_rot, int64_t pos, float base,
          bool neox) {
  const float theta_scale = std::pow(base, -2.0f / static_cast<float>(n_rot));
  for (int64_t h = 0; h < n_head; ++h) {
    float* xh = x + h * head_dim;
    float theta = static_cast<float>(pos);
    for (int64_t i = 0; i < n_rot; i += 2) {
      const float c = std::cos(theta);
      const float s = std::sin(theta);
      theta *= theta_scale;
      const int64_t i0 = neox ? i / 2 : i;
      const int64_t i1 = neox ? i / 2 + n_rot / 2 : i + 1;
      const float x0 = xh[i0];
      const float x1 = xh[i1];
      xh[i0] = x0 * c - x1 * s;
      xh[i1] = x0 * s + x1 * c;
    }
  }
}

const Table& table_scalar() {
  static const Table t{
      .isa = Isa::scalar,
      .quantize_act = quantize_act,
      .i2s_gemv = i2s_gemv,
      .i2s_gemm = i2s_gemm,
      .f16_gemm = f16_gemm,
      .q8_0_gemm = q8_0_gemm,
      .quantize_q8_0 = quantize_q8_0,
      .f32_to_f16 = f32_to_f16,
      .f16_to_f32 = f16_to_f32,
      .q8_0_to_f32 = q8_0_to_f32,
      .f16_dot = f16_dot,
      .rmsnorm = rmsnorm,
      .softmax = softmax,
      .relu_sqr_mul = relu_sqr_mul,
      .silu_mul = silu_mul,
      .add = add,
  };
  return t;
}

} // namespace bitnet::kernels
