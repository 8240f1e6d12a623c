// Internal: the float kernels every SIMD variant shares (softmax, SiLU, ReLU², add, RoPE) as
// templates over a small vector-ops policy V, and the entries a variant derives from its dots
// (the F16 gemm loops). Each ISA TU instantiates them with its own intrinsics, so the steps are
// written once and every variant keeps the scalar reference's operations in the same order.
// Internal linkage for the reason given in kernel_common.hpp.
//
// V provides, for its vector type F of V::kLanes floats (16 % kLanes == 0):
//   load(p), store(p, v), set1(f)       unaligned loads and stores, a broadcast;
//   add, sub, mul, div(a, b)            lane-wise, rounded once each;
//   fmadd(a, b, c), fmsub(a, b, c),     a·b + c, a·b − c and c − a·b, fused;
//   fnmadd(a, b, c)
//   relu(v)                             v > 0 ? v : 0 per lane (NaN gives 0);
//   max(a, b)                           a > b ? a : b per lane (b where a is NaN);
//   hmax(v)                             the largest lane;
//   sum16(e)                            the 16 lanes of e[0..16/kLanes) added by halving (lane l
//                                       plus l + 8, then l + 4, l + 2, l + 1), as ggml's 16-lane
//                                       reduction;
//   chunk_sums(x, sums)                 optional: sums[c] = sum16 of x[16c..16c+16) for c < 16,
//                                       the 16 reductions done together;
//   round_f16(v)                        each lane rounded to the nearest f16 and back;
//   expf(v)                             ggml_expf (kernels_scalar.cpp) on every lane.
// A template uses only what it needs, so a policy may give a subset (AVX-512: RoPE's).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/kernel_common.hpp"
#include "util/fp16.hpp"

namespace bitnet::kernels {
namespace {

// ggml_expf (kernels_scalar.cpp) up to its scaling: n = round(x·log2 e) and j = 1 + p(b),
// b = x − n·ln 2 (two-part constant), so that exp(x) = j·2^n. Each variant's expf scales j
// and saturates past |n| > 192 with its own instructions.
template <class V> typename V::F exp_steps(typename V::F x, typename V::F& n) {
  const auto r = V::set1(0x1.8p23f);
  n = V::sub(V::fmadd(x, V::set1(kExpLog2e), r), r);
  const auto b = V::fnmadd(n, V::set1(kExpLn2Lo), V::fnmadd(n, V::set1(kExpLn2Hi), x));
  const auto u = V::mul(b, b);
  return V::fmadd(V::fmadd(V::fmadd(V::set1(kExpC5), b, V::set1(kExpC4)), u,
                           V::fmadd(V::set1(kExpC3), b, V::set1(kExpC2))),
                  u, V::fmadd(V::set1(kExpC1), b, V::set1(1.0f)));
}

// The scalar softmax's steps (kernels_scalar.cpp): scale and max, exp in chunks of 16 whose
// halving sums are added in double, the tail with expf, then × (float)(1/Σ), rounded to f16
// where round_f16. The maximum is exact in any order: each lane keeps its own, and the lanes
// meet once at the end. Where V has chunk_sums, 16 chunks' halving sums are taken together
// (the same additions, fewer shuffles) and then added in double in order.
template <class V> void vec_softmax(float* x, int64_t n, float scale, bool round_f16) {
  constexpr int L = V::kLanes;
  const auto vs = V::set1(scale);
  auto vmax = V::set1(-INFINITY);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const auto v = V::mul(V::load(x + i), vs);
    V::store(x + i, v);
    vmax = V::max(v, vmax);
  }
  float max = V::hmax(vmax);
  for (; i < n; ++i) {
    x[i] *= scale;
    if (x[i] > max) max = x[i];
  }
  vmax = V::set1(max);
  double sum = 0.0;
  i = 0;
  if constexpr (requires(const float* p, float* s) { V::chunk_sums(p, s); })
    for (; i + 256 <= n; i += 256) {
      for (int64_t j = i; j < i + 256; j += L)
        V::store(x + j, V::expf(V::sub(V::load(x + j), vmax)));
      float sums[16];
      V::chunk_sums(x + i, sums);
      for (const float s : sums)
        sum += static_cast<double>(s);
    }
  for (; i + 16 <= n; i += 16) {
    typename V::F e[16 / L];
    for (int j = 0; j < 16 / L; ++j) {
      e[j] = V::expf(V::sub(V::load(x + i + L * j), vmax));
      V::store(x + i + L * j, e[j]);
    }
    sum += static_cast<double>(V::sum16(e));
  }
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += static_cast<double>(x[i]);
  }
  const float inv = static_cast<float>(1.0 / sum);
  const auto vinv = V::set1(inv);
  i = 0;
  if (round_f16)
    for (; i + L <= n; i += L)
      V::store(x + i, V::round_f16(V::mul(V::load(x + i), vinv)));
  else
    for (; i + L <= n; i += L)
      V::store(x + i, V::mul(V::load(x + i), vinv));
  for (; i < n; ++i) {
    x[i] *= inv;
    if (round_f16) x[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
  }
}

// The scalar silu_mul's steps: x / (1 + expf(-x)) in chunks of 16, the tail with expf.
template <class V> void vec_silu_mul(const float* g, const float* u, int64_t n, float* out) {
  const int64_t nv = n / 16 * 16;
  const auto one = V::set1(1.0f), zero = V::set1(0.0f);
  for (int64_t i = 0; i < nv; i += V::kLanes) {
    const auto gv = V::load(g + i);
    const auto e = V::expf(V::sub(zero, gv));
    V::store(out + i, V::mul(V::div(gv, V::add(one, e)), V::load(u + i)));
  }
  for (int64_t i = nv; i < n; ++i)
    out[i] = (g[i] / (1.0f + std::exp(-g[i]))) * u[i];
}

template <class V> void vec_relu_sqr_mul(const float* g, const float* u, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + V::kLanes <= n; i += V::kLanes) {
    const auto r = V::relu(V::load(g + i));
    V::store(out + i, V::mul(V::mul(r, r), V::load(u + i)));
  }
  for (; i < n; ++i) {
    const float r = g[i] > 0.0f ? g[i] : 0.0f;
    out[i] = (r * r) * u[i];
  }
}

template <class V> void vec_add(const float* a, const float* b, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + V::kLanes <= n; i += V::kLanes)
    V::store(out + i, V::add(V::load(a + i), V::load(b + i)));
  for (; i < n; ++i)
    out[i] = a[i] + b[i];
}

// RoPE (kernels.hpp): NEOX pairs kLanes at a time, each as rope_rotate contracts it; the
// interleaved form and the tail pair by pair.
template <class V>
void vec_rope(float* x, int64_t n_head, int64_t head_dim, int64_t n_rot, const float* cs,
              bool neox) {
  const int64_t half = n_rot / 2;
  for (int64_t h = 0; h < n_head; ++h) {
    float* xh = x + h * head_dim;
    int64_t i = 0;
    for (; neox && i + V::kLanes <= half; i += V::kLanes) {
      const auto x0 = V::load(xh + i), x1 = V::load(xh + half + i);
      const auto c = V::load(cs + i), s = V::load(cs + half + i);
      V::store(xh + i, V::fmsub(x0, c, V::mul(x1, s)));
      V::store(xh + half + i, V::fmadd(x0, s, V::mul(x1, c)));
    }
    for (; i < half; ++i)
      rope_rotate(xh + (neox ? i : 2 * i), xh + (neox ? i + half : 2 * i + 1), cs[i], cs[half + i]);
  }
}

// key_tile_dots (kernels.hpp) of NX vectors and kLanes keys of a tile (lane l: the key at
// kt + l, its elements kKeyTile floats apart), NC chunks of 64 (0: n / 64 at run time). Each
// step of ggml_vec_dot_f16's order is lane-wise: a lane's accumulator at element e of the chunks
// (e < 64) is its products at e, e + 64, ... fused in from +0, the accumulators are joined as
// (a0 + a2) + (a1 + a3) and halved (l + l+8, l + l+4, ...). The sums are taken depth first, so a
// few accumulators of NX vectors stay in registers; each key element loaded feeds NX FMAs. The
// steps are inlined whole: a call returns its vectors through memory. V::order(v, p), where V
// has it, makes the key pointer depend on each joined sum, so that no later chunk's loads and
// FMAs are hoisted above it: GCC 12 otherwise takes all 64 chunk sums first and spills them
// (AVX-512, NX = 4: 750 register copies and 472 stack accesses for 512 FMAs; 251 and 38 with it).
template <class V, int NX, int NC> struct KeyLaneDots {
  using F = typename V::F;
  struct Acc {
    F v[NX];
  };
  const float* kt;
  const float* x;
  int64_t ldx, n;

  [[gnu::always_inline]] static Acc add(const Acc& a, const Acc& b) {
    Acc s;
    for (int i = 0; i < NX; ++i)
      s.v[i] = V::add(a.v[i], b.v[i]);
    return s;
  }
  [[gnu::always_inline]] Acc chunks(int64_t e) const {
    Acc a;
    for (int i = 0; i < NX; ++i)
      a.v[i] = V::set1(0.0f);
    const int64_t nc = NC > 0 ? NC : n / kF16Chunk;
    for (int64_t c = 0; c < nc; ++c) {
      const int64_t k = e + c * kF16Chunk;
      const F kv = V::load(kt + kKeyTile * k);
      for (int i = 0; i < NX; ++i)
        a.v[i] = V::fmadd(kv, V::set1(x[i * ldx + k]), a.v[i]);
    }
    return a;
  }
  [[gnu::always_inline]] Acc joined(int l) {
    Acc j = add(add(chunks(l), chunks(32 + l)), add(chunks(16 + l), chunks(48 + l)));
    if constexpr (requires(typename V::F v) { V::order(v, kt); })
      for (int i = 0; i < NX; ++i)
        V::order(j.v[i], kt);
    return j;
  }
  template <int H> [[gnu::always_inline]] Acc halved(int l) {
    if constexpr (H == 8)
      return add(joined(l), joined(l + 8));
    else
      return add(halved<2 * H>(l), halved<2 * H>(l + H));
  }
  // out[i·ld_out + m] for the first `keys` lanes m.
  void store(float* out, int64_t ld_out, int64_t keys) {
    const Acc s = halved<1>(0);
    for (int i = 0; i < NX; ++i) {
      if (keys == V::kLanes) {
        V::store(out + i * ld_out, s.v[i]);
      } else {
        float lanes[V::kLanes];
        V::store(lanes, s.v[i]);
        for (int64_t m = 0; m < keys; ++m)
          out[i * ld_out + m] = lanes[m];
      }
    }
  }
};

template <class V, int NX, int NC>
void key_tile_dots_nc(const float* kt, int64_t n_keys, const float* x, int64_t ldx, int64_t n_x,
                      int64_t n, float* out, int64_t ld_out) {
  constexpr int L = V::kLanes;
  for (int64_t j = 0; j < n_keys; j += L) { // the tile's lanes in kLanes-key parts
    const float* lanes = kt + j / kKeyTile * kKeyTile * n + j % kKeyTile;
    const int64_t keys = n_keys - j < L ? n_keys - j : L;
    for (int64_t i = 0; i < n_x; i += NX) {
      const int nx = n_x - i < NX ? static_cast<int>(n_x - i) : NX;
      with_token_count<NX>(nx, [&](auto nx_c) {
        KeyLaneDots<V, decltype(nx_c)::value, NC>{lanes, x + i * ldx, ldx, n}.store(
            out + i * ld_out + j, ld_out, keys);
      });
    }
  }
}

// The head sizes of the BitNet models (128) and of small ones (64) unrolled; others at run time.
template <class V, int NX>
void vec_key_tile_dots(const float* kt, int64_t n_keys, const float* x, int64_t ldx, int64_t n_x,
                       int64_t n, float* out, int64_t ld_out) {
  if (n == 2 * kF16Chunk)
    key_tile_dots_nc<V, NX, 2>(kt, n_keys, x, ldx, n_x, n, out, ld_out);
  else if (n == kF16Chunk)
    key_tile_dots_nc<V, NX, 1>(kt, n_keys, x, ldx, n_x, n, out, ld_out);
  else
    key_tile_dots_nc<V, NX, 0>(kt, n_keys, x, ldx, n_x, n, out, ld_out);
}

// The table's float entries from V.
template <class V> void set_vec_entries(Table& t) {
  t.softmax = vec_softmax<V>;
  t.silu_mul = vec_silu_mul<V>;
  t.relu_sqr_mul = vec_relu_sqr_mul<V>;
  t.add = vec_add<V>;
  t.rope = vec_rope<V>;
}

} // namespace
} // namespace bitnet::kernels
