// AMX-INT8 kernels (compiled with BITNET_FLAGS_AMX; used only on CPUs that have AMX-TILE,
// AMX-INT8 and the AVX-512 variant, once Linux has granted the process the tile state): the
// AVX-512 table with the I2_S gemm of 16 or more tokens (a prompt) on tile instructions. tdpbsud
// multiplies signed int8 activations by unsigned codes 0..3 and adds four products at a time
// into int32 without saturation, so the sums equal the scalar reference exactly.
#include "kernels/amx_common.hpp"
#include "kernels/avx512_common.hpp"

#include "kernels/kernel_common.hpp"
#include "kernels/variants.hpp"

namespace bitnet::kernels {
namespace {

// The gemm's tile (kernel_common.hpp, i2s_gemm_panels) on I2sPanel's 32 rows × 32 tokens in
// the eight tile registers: sums in tmm0-3 (tokens 16a.., rows 16b.. in tmm(2a + b)), token
// halves in tmm4-5, the panel's row halves in tmm6-7. A panel step is one 64-byte row of a
// B tile (16 rows × 4 codes), so 16 steps are a tile with the step's 128 bytes as its stride.
// The A tiles come from the staged copy of the tokens (i2s_stage_tokens), 1 KiB each,
// not from the activation rows in place (a stride of 2560 or 6912 bytes): bench_kernels
// i2s_gemm amx at 1 thread, fastest of 6 alternated runs, 1.06-1.27x on the 2B-4T shapes at 128
// and 512 tokens. A part tile's missing tokens are zeros there (their sums, past the block's,
// are not stored).
struct AmxTile : I2sPanel {
  static constexpr int kTokens = 32;
  static constexpr int64_t kChunk = 512; // a 16 KiB panel, 8 steps of tiles
  static constexpr bool kStagedTokens = true;

  // a: the staged tile of this tile's first 16 tokens and first inputs; k: the row length.
  template <int NT>
  static void dot(const int8_t* panel, int64_t kc, const int8_t* a, int64_t k, int32_t* sums) {
    constexpr bool kTwo = NT > 16; // token halves
    constexpr int64_t kSumStride = kRows * 4;
    _tile_loadd(0, sums, kSumStride);
    _tile_loadd(1, sums + 16, kSumStride);
    if constexpr (kTwo) {
      _tile_loadd(2, sums + 16 * kRows, kSumStride);
      _tile_loadd(3, sums + 16 * kRows + 16, kSumStride);
    }
    for (int64_t g = 0; g < kc / 64; ++g) {
      const int8_t* steps = panel + g * 16 * kRows * 4;
      _tile_loadd(6, steps, kRows * 4);
      _tile_loadd(7, steps + 64, kRows * 4);
      _tile_loadd(4, a + 1024 * g, 64);
      _tile_dpbsud(0, 4, 6);
      _tile_dpbsud(1, 4, 7);
      if constexpr (kTwo) {
        _tile_loadd(5, a + 16 * k + 1024 * g, 64);
        _tile_dpbsud(2, 5, 6);
        _tile_dpbsud(3, 5, 7);
      }
    }
    _tile_stored(0, sums, kSumStride);
    _tile_stored(1, sums + 16, kSumStride);
    if constexpr (kTwo) {
      _tile_stored(2, sums + 16 * kRows, kSumStride);
      _tile_stored(3, sums + 16 * kRows + 16, kSumStride);
    }
  }
};

// Fewer tokens than a tile's half go as AVX-512 takes them: a batched decode step of 8
// sequences ran 0.8-0.93x as fast through AmxTile (bench_batch -n 8, 2 threads, 2 alternations),
// one of 16 1.28-1.3x. More go through AmxTile's panels, the tile configuration loaded for the
// call's thread and released after it.
inline constexpr int64_t kAmxMinTokens = 16;

void i2s_gemm_staged(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1,
                     const int8_t* q, const int8_t* staged, const float* act_scale,
                     const int32_t* act_sum, int64_t n_tok, float* out, int64_t ld_out) {
  if (n_tok < kAmxMinTokens) {
    table_avx512().i2s_gemm(w, w_scale, k, r0, r1, q, act_scale, act_sum, n_tok, out, ld_out);
    return;
  }
  static const TileConfig config;
  _tile_loadconfig(&config);
  i2s_gemm_panels<AmxTile>(w, w_scale, k, r0, r1, q, staged, act_scale, act_sum, n_tok, out,
                           ld_out);
  _tile_release();
}

// Table::i2s_stage: nothing for fewer than kAmxMinTokens tokens, which i2s_gemm_staged reads in
// place (a batched decode step).
void i2s_stage(const int8_t* q, int64_t t0, int64_t t1, int64_t n, int64_t k, int8_t* staged) {
  if (n >= kAmxMinTokens) i2s_stage_tokens(q, t0, t1, n, k, staged);
}

// A caller without a staged copy (tests, a single matmul): the copy made here, for this call.
void i2s_gemm(const uint8_t* w, float w_scale, int64_t k, int64_t r0, int64_t r1, const int8_t* q,
              const float* act_scale, const int32_t* act_sum, int64_t n_tok, float* out,
              int64_t ld_out) {
  std::vector<StagedRow> staged(static_cast<size_t>(i2s_staged_bytes(n_tok, k) / 64));
  auto* bytes = reinterpret_cast<int8_t*>(staged.data());
  i2s_stage(q, 0, n_tok, n_tok, k, bytes);
  i2s_gemm_staged(w, w_scale, k, r0, r1, q, bytes, act_scale, act_sum, n_tok, out, ld_out);
}

Table make_table() {
  Table t = table_avx512();
  t.isa = Isa::amx;
  t.i2s_gemm = i2s_gemm;
  t.i2s_stage = i2s_stage;
  t.i2s_gemm_staged = i2s_gemm_staged;
  return t;
}

} // namespace

const Table& table_amx() {
  static const Table t = make_table();
  return t;
}

} // namespace bitnet::kernels
