// The reference kernels: plain C++ compiled without ISA flags. Every other variant must
// give the same integers, and the same floats where the float expression is the same.
// Numerics follow bitnet.cpp / ggml (docs/model-math.md §2, §3, §4) because model parity depends on
// them.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

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

// Σ code·q over one packed row of k elements (layout: docs/gguf-format.md §3).
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

// ggml_vec_dot_f16's four 16-lane accumulators (acc[16q + l]: lane l of accumulator q) joined
// and halved (kernel_common.hpp).
float ggml_f16_join(const float* acc) {
  float v[16];
  for (int l = 0; l < 16; ++l)
    v[l] = (acc[l] + acc[32 + l]) + (acc[16 + l] + acc[48 + l]);
  for (int w = 8; w >= 1; w >>= 1)
    for (int l = 0; l < w; ++l)
      v[l] += v[l + w];
  return v[0];
}

// ggml_vec_dot_f16's order (kernel_common.hpp): acc[16q + l] is lane l of accumulator q. Of
// two f16 operands, or of an f16 and an f32 operand (f16_dots) with the products fused into
// the lanes. (A product of two f16 values is exact, so there the plain multiply-add, cheaper
// than a library fma, rounds alike.)
template <class X> float ggml_f16_dot(const uint16_t* a, const X* b, int64_t n) {
  float acc[kF16Chunk] = {};
  const int64_t np = n / kF16Chunk * kF16Chunk;
  for (int64_t i = 0; i < np; i += kF16Chunk)
    for (int64_t l = 0; l < kF16Chunk; ++l) {
      if constexpr (std::is_same_v<X, uint16_t>)
        acc[l] += fp16_to_fp32(a[i + l]) * fp16_to_fp32(b[i + l]);
      else
        acc[l] = std::fma(fp16_to_fp32(a[i + l]), b[i + l], acc[l]);
    }
  return f16_dot_tail(ggml_f16_join(acc), a, b, np, n, fp16_to_fp32);
}

// The keys' dots as f16_dots takes them (the products of two f16 values, exact).
void key_tile_dots(const float* kt, int64_t n_keys, const float* x, int64_t ldx, int64_t n_x,
                   int64_t n, float* out, int64_t ld_out) {
  for (int64_t j = 0; j < n_keys; ++j) {
    const float* key = kt + j / kKeyTile * kKeyTile * n + j % kKeyTile; // element d at kKeyTile·d
    for (int64_t i = 0; i < n_x; ++i) {
      float acc[kF16Chunk] = {};
      for (int64_t c = 0; c < n; c += kF16Chunk)
        for (int64_t l = 0; l < kF16Chunk; ++l)
          acc[l] += key[kKeyTile * (c + l)] * x[i * ldx + c + l];
      out[i * ld_out + j] = ggml_f16_join(acc);
    }
  }
}

float f16_dot(const uint16_t* a, const uint16_t* b, int64_t n) {
  return ggml_f16_dot(a, b, n);
}

float f16_f32_dot(const uint16_t* w, const float* x, int64_t k) {
  float acc[16] = {};
  for (int64_t i = 0; i < k; i += 16)
    for (int l = 0; l < 16; ++l)
      acc[l] = std::fma(fp16_to_fp32(w[i + l]), x[i + l], acc[l]);
  for (int h = 8; h >= 1; h >>= 1)
    for (int l = 0; l < h; ++l)
      acc[l] += acc[l + h];
  return acc[0];
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

// ggml's Q8_0 order (kernel_common.hpp) over nb blocks of w and x.
float q8_0_dot(const uint8_t* w, const uint8_t* x, int64_t nb) {
  float lane[kQ8Lanes] = {};
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* wb = w + b * kQ8BlockBytes;
    const uint8_t* xb = x + b * kQ8BlockBytes;
    const float d = q8_block_scale(wb) * q8_block_scale(xb);
    for (int l = 0; l < kQ8Lanes; ++l) {
      int32_t sum = 0;
      for (int m = 4 * l; m < 4 * l + 4; ++m)
        sum += static_cast<int8_t>(wb[2 + m]) * static_cast<int8_t>(xb[2 + m]);
      lane[l] = std::fma(d, static_cast<float>(sum), lane[l]);
    }
  }
  for (int w2 = kQ8Lanes / 2; w2 >= 1; w2 >>= 1)
    for (int l = 0; l < w2; ++l)
      lane[l] += lane[l + w2];
  return lane[0];
}

void q8_0_gemm(const uint8_t* w, int64_t k, int64_t r0, int64_t r1, const uint8_t* xq,
               int64_t n_tok, float* out, int64_t ld_out) {
  const int64_t nb = k / kQ8Block;
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t r = r0; r < r1; ++r)
      out[t * ld_out + r] = q8_0_dot(w + r * nb * kQ8BlockBytes, xq + t * nb * kQ8BlockBytes, nb);
}

// Table::q8_0_screen's definition, lane by lane.
void q8_0_screen(const uint8_t* w, int64_t k, int64_t n_groups, const int8_t* xq, const float* xd,
                 const int32_t* x_bias, int64_t n_x, float* out, int64_t ld_out) {
  const int64_t nb = k / kQ8Block;
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* group = w + g * screen_group_bytes(k);
    for (int64_t t = 0; t < n_x; ++t)
      for (int64_t l = 0; l < kScreenRows; ++l) {
        float acc = 0.0f;
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* block = group + b * kScreenBlockBytes;
          const int8_t* x = xq + t * k + b * kQ8Block;
          int32_t s = x_bias[t * nb + b];
          for (int j = 0; j < 8; ++j)
            for (int e = 0; e < 4; ++e)
              s += block[64 * j + 4 * l + e] * x[4 * j + e];
          uint16_t d;
          std::memcpy(&d, block + kScreenQuantBytes + 2 * l, sizeof d);
          acc = std::fma(static_cast<float>(s), fp16_to_fp32(d) * xd[t * nb + b], acc);
        }
        out[t * ld_out + kScreenRows * g + l] = acc;
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

// Each row's Σx² in 4 interleaved chains, then rms_mean (the ordered sum where the order
// can matter).
void rmsnorm(const float* x, int64_t n_rows, const float* weight, int64_t n, float eps,
             float* out) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* xr = x + r * n;
    double c[4] = {};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
      for (int j = 0; j < 4; ++j)
        c[j] += static_cast<double>(xr[i + j] * xr[i + j]);
    for (; i < n; ++i)
      c[0] += static_cast<double>(xr[i] * xr[i]);
    const float mean = rms_mean((c[0] + c[1]) + (c[2] + c[3]), xr, n);
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (int64_t k = 0; k < n; ++k)
      out[r * n + k] = (xr[k] * scale) * weight[k];
  }
}

// ggml's vectorised expf as the reference build runs it (ggml_v_expf, AVX-512: adapted
// from Arm's optimized-routines): n = round(x / ln 2), b = x − n·ln 2 (two-part constant),
// exp(x) = (1 + p(b)) · 2^n with p of degree 5 and one rounding in the scaling (vscalefps;
// here two exact power-of-two factors, kernel_common.hpp). Each fused multiply-add of the
// vector code is a std::fma, so the bits equal the reference's; |n| > 192 gives 0 or +inf.
// kernels_avx2.cpp has the 8-lane form of the same steps.
float ggml_expf(float x) {
  const float r = 0x1.8p23f;
  const float z = std::fma(x, kExpLog2e, r);
  const float n = z - r;
  if (std::isnan(n)) return n;
  if (std::fabs(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
  const float b = std::fma(-n, kExpLn2Lo, std::fma(-n, kExpLn2Hi, x));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(kExpC5, b, kExpC4), u, std::fma(kExpC3, b, kExpC2)), u,
                           std::fma(kExpC1, b, 1.0f));
  const auto ni = static_cast<int32_t>(n);
  return j * pow2_float(ni / 2) * pow2_float(ni - ni / 2);
}

// ggml_compute_forward_soft_max_f32 on the reference build: scale, max, then exp in chunks
// of 16 (ggml_v_expf) whose sums are reduced as a tree (8, 4, 2, 1) and added in double;
// a tail of n % 16 uses expf and double adds; finally × (float)(1/Σ), rounded to f16 and
// back where round_f16.
void softmax(float* x, int64_t n, float scale, bool round_f16) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    x[i] *= scale;
    max = std::max(max, x[i]);
  }
  double sum = 0.0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    float lane[16];
    for (int l = 0; l < 16; ++l)
      lane[l] = x[i + l] = ggml_expf(x[i + l] - max);
    for (int w = 8; w >= 1; w >>= 1)
      for (int l = 0; l < w; ++l)
        lane[l] += lane[l + w];
    sum += static_cast<double>(lane[0]);
  }
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += static_cast<double>(x[i]);
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t t = 0; t < n; ++t) {
    x[t] *= inv;
    if (round_f16) x[t] = fp16_to_fp32(fp32_to_fp16(x[t]));
  }
}

void relu_sqr_mul(const float* g, const float* u, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float r = g[i] > 0.0f ? g[i] : 0.0f;
    out[i] = (r * r) * u[i];
  }
}

// ggml_vec_silu_f32 on the reference build: x / (1 + ggml_v_expf(-x)) in chunks of 16,
// a tail of n % 16 with expf; then the separate multiply by u.
void silu_mul(const float* g, const float* u, int64_t n, float* out) {
  const int64_t nv = n & ~int64_t{15};
  for (int64_t i = 0; i < n; ++i) {
    const float e = i < nv ? ggml_expf(-g[i]) : std::exp(-g[i]);
    out[i] = (g[i] / (1.0f + e)) * u[i];
  }
}

void add(const float* a, const float* b, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i)
    out[i] = a[i] + b[i];
}

void rope(float* x, int64_t n_head, int64_t head_dim, int64_t n_rot, const float* cs, bool neox) {
  const int64_t half = n_rot / 2;
  for (int64_t h = 0; h < n_head; ++h) {
    float* xh = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const int64_t i0 = neox ? i : 2 * i;
      const int64_t i1 = neox ? i + half : 2 * i + 1;
      rope_rotate(xh + i0, xh + i1, cs[i], cs[half + i]);
    }
  }
}

} // namespace

// 128 rows × 64 tokens per call: the tokens' 640 KB of f32 (2B-4T) and the rows stay in L2 (a
// 2048-row slice with 512 tokens, AVX-512: 72 ms in groups of 64 against 118 ms for all at once).
void f16_f32_gemm(const Table& t, const uint16_t* w, int64_t k, int64_t r0, int64_t r1,
                  const float* x, int64_t n_tok, float* out, int64_t ld_out) {
  constexpr int64_t kRows = 128, kTokens = 64;
  for (int64_t r = r0; r < r1; r += kRows)
    for (int64_t i = 0; i < n_tok; i += kTokens)
      t.f16_f32_dots(w + r * k, k, std::min(kRows, r1 - r), x + i * k, k,
                     std::min(kTokens, n_tok - i), k, out + i * ld_out + r, ld_out);
}

void rope_cos_sin(int64_t pos, int64_t n_rot, float base, float* cs) {
  const float theta_scale = std::pow(base, -2.0f / static_cast<float>(n_rot));
  const int64_t half = n_rot / 2;
  float theta = static_cast<float>(pos);
  for (int64_t i = 0; i < half; ++i) {
    cs[i] = std::cos(theta);
    cs[half + i] = std::sin(theta);
    theta *= theta_scale;
  }
}

const Table& table_scalar() {
  static const Table t{
      .isa = Isa::scalar,
      .quantize_act = quantize_act,
      .i2s_gemv = i2s_gemv,
      .i2s_gemm = i2s_gemm,
      .i2s_stage = nullptr, // the gemm reads the rows in place
      .i2s_gemm_staged = nullptr,
      .f16_gemm = f16_gemm_rows<f16_dot>,
      .f16_f32_dot = f16_f32_dot,
      .q8_0_gemm = q8_0_gemm,
      .q8_0_screen = q8_0_screen,
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
      .rope = rope,
      .f16_dots = dots_each<ggml_f16_dot<float>>,
      .f16_f16_dots = nullptr, // f16_dots of the widened probabilities
      .f16_f32_dots = dots_each<f16_f32_dot>,
      .head_dots = head_dots_by<dots_each<ggml_f16_dot<float>>>,
      .key_tile_dots = key_tile_dots,
  };
  return t;
}

} // namespace bitnet::kernels
