// The kernel table: one set of function pointers filled once at start-up from the CPU's
// features (or BITNET_ISA / --isa). Every variant gives the same integers as `scalar`.
// Numerics follow bitnet.cpp/ggml where parity depends on them (docs/model-math.md §2, §3, §4).
//
// Conventions: a weight matrix has `rows` output rows of `k` inputs each (GGUF ne = [k, rows]).
// Row-range kernels compute output rows [r0, r1) so callers split work by rows across
// threads; results never depend on how rows are split.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::kernels {

enum class Isa { scalar, avx2, avxvnni, avx512, amx, neon, neon_dotprod };
const char* to_string(Isa isa) noexcept;

inline constexpr int64_t kI2sBlock = 128; // elements per I2_S block (32 bytes)
inline constexpr int64_t kQ8Block = 32;   // elements per Q8_0 block (34 bytes)
inline constexpr int64_t kKeyTile = 16;   // keys per tile of Table::key_tile_dots

// Table::q8_0_screen's layout: Q8_0 rows in groups of kScreenRows, one row per int32 lane.
inline constexpr int64_t kScreenRows = 16;
inline constexpr int64_t kScreenQuantBytes = kScreenRows * kQ8Block; // a block's quants
inline constexpr int64_t kScreenBlockBytes = kScreenQuantBytes + 2 * kScreenRows; // + scales
// Bytes of one group of k inputs.
constexpr int64_t screen_group_bytes(int64_t k) {
  return k / kQ8Block * kScreenBlockBytes;
}

struct Table {
  Isa isa;

  // Per-token int8 activation quantization exactly as bitnet.cpp's quantize_row_i8_s:
  // scale = 127 / max(|x|, 1e-5) (max in double), q = round-half-even(x * scale) clamped
  // to [-128, 127]; *scale_out = scale, *sum_out = Σ q.
  void (*quantize_act)(const float* x, int64_t n, int8_t* q, float* scale_out, int32_t* sum_out);

  // I2_S × int8. `w` is the packed tensor (row r at byte r*k/4, k % 128 == 0), `w_scale`
  // its per-tensor scale. For token t and row r:
  //   out[t*ld_out + r] = ((float)Σ code·q − act_sum[t]) / act_scale[t] * w_scale
  // Token t's activations are q[t*k .. t*k+k).
  void (*i2s_gemv)(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1,
                   const int8_t* q, float act_scale, int32_t act_sum, float* out);
  void (*i2s_gemm)(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1,
                   const int8_t* q, const float* act_scale, const int32_t* act_sum, int64_t n_tok,
                   float* out, int64_t ld_out);
  // A variant whose gemm reads the activations in another layout (amx: tiles of 16 tokens × 64
  // inputs) has the copy made once per input rather than in every call on every thread:
  // i2s_stage writes tokens [t0, t1) of q's n (and, when t1 = n, the padding after them) to
  // `staged`, i2s_staged_bytes(n, k) bytes 64-byte aligned, or nothing for an n that
  // i2s_gemm_staged reads in place; i2s_gemm_staged is i2s_gemm given q and that copy of all
  // n_tok tokens. Null in the variants that read q in place.
  void (*i2s_stage)(const int8_t* q, int64_t t0, int64_t t1, int64_t n, int64_t k, int8_t* staged);
  void (*i2s_gemm_staged)(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1,
                          const int8_t* q, const int8_t* staged, const float* act_scale,
                          const int32_t* act_sum, int64_t n_tok, float* out, int64_t ld_out);

  // F16 weights (uint16 bits) × F16 operand (the f32 input rounded to f16 first, as ggml
  // does for a single row): out[t*ld_out + r] = Σ w[r,i]·x[t,i] in ggml_vec_dot_f16's order
  // (kernel_common.hpp).
  void (*f16_gemm)(const uint16_t* w, int64_t k, int64_t r0, int64_t r1, const uint16_t* x,
                   int64_t n_tok, float* out, int64_t ld_out);
  // F16 weights × an unrounded f32 operand, as ggml computes an F16 product with more than
  // one f32 row (llamafile tinyBLAS: the head of a batch, attention's V·p in prefill): one
  // 16-lane FMA accumulator over k (k % 16 == 0), the lanes added by halving (8, 4, 2, 1).
  // Many rows at once: f16_f32_dots.
  float (*f16_f32_dot)(const uint16_t* w, const float* x, int64_t k);
  // Q8_0 weights × Q8_0-quantized operand (ggml's vec_dot_q8_0_q8_0 numerics).
  void (*q8_0_gemm)(const uint8_t* w, int64_t k, int64_t r0, int64_t r1, const uint8_t* xq,
                    int64_t n_tok, float* out, int64_t ld_out);
  // The head screen's approximate logits in its groups layout (model/head_screen.hpp,
  // ScreenLayout; the rows layout goes through q8_0_gemm): Q8_0 rows × a Q8_0
  // operand in an order of its own, not ggml's. Rows come in groups of kScreenRows, laid out
  // so that one vpdpbusd / sdot with a broadcast 4-byte word of the operand multiplies a whole
  // group and no per-row lane sum remains. Group g of w starts at g·screen_group_bytes(k),
  // its blocks back to back (one unbroken stream: a gap per group cost a fifth of the
  // bandwidth); in block b (kScreenBlockBytes from b·kScreenBlockBytes), row l:
  //   byte 64·j + 4·l + e        element 32b + 4j + e (j < 8, e < 4) as q + 128 (uint8;
  //                              q in [-127, 127])
  //   bytes kScreenQuantBytes + 2·l   the block's f16 scale d
  // Token t's operand: xq[t·k + i] (int8 in [-127, 127]), xd[t·nb + b] its block scales as
  // floats (f16 values), x_bias[t·nb + b] = −128·Σ of block b's xq (undoes the +128). Row l
  // of group g (g < n_groups) for token t, out[t·ld_out + kScreenRows·g + l]: acc = 0, then
  // for each block b in order, s = Σ q·x over the block (exact in int32) and
  // acc = fma((float)s, d·xd[t·nb + b], acc), d·xd rounded to float (exact for f16 values).
  // Each block's product is rounded once as it is added and once per later block.
  void (*q8_0_screen)(const uint8_t* w, int64_t k, int64_t n_groups, const int8_t* xq,
                      const float* xd, const int32_t* x_bias, int64_t n_x, float* out,
                      int64_t ld_out);
  // Quantize n floats (n % 32 == 0) to Q8_0 blocks as ggml's quantize_row_q8_0.
  void (*quantize_q8_0)(const float* x, int64_t n, uint8_t* out);

  // Conversions (round to nearest even, as F16C / ggml).
  void (*f32_to_f16)(const float* x, int64_t n, uint16_t* out);
  void (*f16_to_f32)(const uint16_t* x, int64_t n, float* out);
  // Q8_0 blocks → f32 (embedding row lookup for Q8_0 token_embd).
  void (*q8_0_to_f32)(const uint8_t* x, int64_t n, float* out);
  // Dot product of two f16 vectors in the same order (attention: K·q, and a single token's
  // V·p with V stored transposed as ggml does, so both are plain dot products).
  float (*f16_dot)(const uint16_t* a, const uint16_t* b, int64_t n);

  // ggml rms_norm (Σx² in double, mean in float, scale 1/sqrtf(mean+eps)) times weight, on
  // n_rows rows of n floats (row r at x + r·n and out + r·n; out may be x).
  void (*rmsnorm)(const float* x, int64_t n_rows, const float* weight, int64_t n, float eps,
                  float* out);
  // In-place softmax of x[0..n) after scaling by `scale`; Σ in double as ggml. With round_f16
  // each probability is then rounded to the nearest f16 (as a single query's ·V takes them).
  void (*softmax)(float* x, int64_t n, float scale, bool round_f16);
  // out = relu(g)² ⊙ u ; out = silu(g) ⊙ u
  void (*relu_sqr_mul)(const float* g, const float* u, int64_t n, float* out);
  void (*silu_mul)(const float* g, const float* u, int64_t n, float* out);
  // out = a + b
  void (*add)(const float* a, const float* b, int64_t n, float* out);

  // --- Attention (model/attention.cpp) ---
  // RoPE in place on n_head heads of head_dim floats, rotating the first n_rot dims by one
  // position's angles, cs = rope_cos_sin() of it. neox: pairs (i, i + n_rot/2); otherwise
  // (2i, 2i+1). Each pair as ggml's compiler contracts the rotation:
  // x0' = fma(x0, cos, -(x1·sin)), x1' = fma(x0, sin, x1·cos).
  void (*rope)(float* x, int64_t n_head, int64_t head_dim, int64_t n_rot, const float* cs,
               bool neox);
  // Dots of n_rows rows of an F16 matrix (row r at a + r·lda) with n_x f32 vectors (vector i at
  // x + i·ldx), n elements each: out[i·ld_out + r] = Σ a[r,k]·x[i,k] in ggml_vec_dot_f16's
  // order (kernel_common.hpp), each product fused into its lane (exact when x holds f16
  // values: then it is ggml_vec_dot_f16 of the rounded operand), the leftover products
  // rounded to float and added in double. Attention's K·q and a single token's V·p.
  void (*f16_dots)(const uint16_t* a, int64_t lda, int64_t n_rows, const float* x, int64_t ldx,
                   int64_t n_x, int64_t n, float* out, int64_t ld_out);
  // The same dots with F16 vectors (x + i·ldx, uint16 bits): ggml_vec_dot_f16 itself, equal to
  // f16_dots of the widened vectors. A single token's V·p over 2048 positions or more takes its
  // probabilities so where the variant has this (AVX-512): half the bytes keep the four query
  // heads' probabilities (16 KB at 2048 instead of 32) from crowding the value rows out of L1,
  // so that the rows' reads overlap the FMAs better (docs/performance.md). Null where f16_dots
  // of the f32 probabilities is faster.
  void (*f16_f16_dots)(const uint16_t* a, int64_t lda, int64_t n_rows, const uint16_t* x,
                       int64_t ldx, int64_t n_x, int64_t n, float* out, int64_t ld_out);
  // The same products in tinyBLAS's order (f16_f32_dot, n % 16 == 0): a batch's V·p and the
  // head of a batch.
  void (*f16_f32_dots)(const uint16_t* a, int64_t lda, int64_t n_rows, const float* x, int64_t ldx,
                       int64_t n_x, int64_t n, float* out, int64_t ld_out);
  // f16_dots' values for one query's K·q over every KV head (decode): key j's cache row at
  // k + j·ldk holds n_head_kv heads of n elements, and query head h (x + h·n, f16 values)
  // belongs to KV head h / group: out[h·ld_out + j] = f16_dots' dot of head h / group's part of
  // row j with x_h, for j < n_keys and h < n_head_kv·group. The rows are read in address order.
  void (*head_dots)(const uint16_t* k, int64_t ldk, int64_t n_keys, int64_t n_head_kv,
                    int64_t group, const float* x, int64_t n, float* out, int64_t ld_out);
  // f16_dots' values for keys laid out in tiles of kKeyTile (a batch's K·q): key j's element
  // d is kt[(j / kKeyTile)·kKeyTile·n + kKeyTile·d + j % kKeyTile], an F16 value widened to f32,
  // and x holds f16 values; n % 64 == 0. out[i·ld_out + j] for j < n_keys. With the keys in
  // lanes, ggml's join and halving sums are lane-wise adds shared by a tile's keys. Null where
  // f16_dots is faster (AVX2, AVX-VNNI).
  void (*key_tile_dots)(const float* kt, int64_t n_keys, const float* x, int64_t ldx, int64_t n_x,
                        int64_t n, float* out, int64_t ld_out);
};

// Bytes of Table::i2s_stage's copy of n tokens of k inputs: whole tiles of 16 tokens.
constexpr int64_t i2s_staged_bytes(int64_t n, int64_t k) {
  return (n + 15) / 16 * 16 * k;
}

// Table::f16_f32_dots over output rows [r0, r1) of an F16 matrix w (k columns) with n_tok f32
// operands (x + t·k): out[t·ld_out + r], in slices of rows and tokens that stay in L2. A batch's
// F16 head.
void f16_f32_gemm(const Table& t, const uint16_t* w, int64_t k, int64_t r0, int64_t r1,
                  const float* x, int64_t n_tok, float* out, int64_t ld_out);

// RoPE's cos and sin for one position (n_rot/2 of each: cs[i] = cos θ_i, cs[n_rot/2 + i] =
// sin θ_i), as ggml computes them: θ_0 = pos, θ_{i+1} = θ_i · powf(base, -2/n_rot) in float.
// Computed once per position and shared by every head and layer.
void rope_cos_sin(int64_t pos, int64_t n_rot, float base, float* cs);

// The table in use. Chosen on first call: BITNET_ISA if set (an unavailable or unknown name
// throws Error(invalid_argument)), else the best the CPU supports.
const Table& table();
// Force a variant before first use (the CLI's --isa). Throws like BITNET_ISA.
void select_isa(std::string_view name);
// The variant table() chooses on first use for a BITNET_ISA value (null or "" = unset):
// the named variant (throws like select_isa), else the best this CPU runs.
Isa isa_for_environment(const char* bitnet_isa);
// Variants this CPU can run, best last; and every variant compiled into this binary.
std::vector<Isa> available_isas();
std::vector<Isa> compiled_isas();
// The table of one variant (tests compare variants). Throws if unavailable here.
const Table& table_for(Isa isa);
// One line describing the CPU (model name and the features that matter), for receipts.
std::string cpu_description();

} // namespace bitnet::kernels
