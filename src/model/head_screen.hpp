// The screened output head (issue 12). A decode step needs the m largest logits only (m = 1
// for greedy, the chain's top-k otherwise), yet the F16 head is more than half of the bytes a
// step reads. At load an 8-bit copy of the head is built (Q8_0 blocks, half the bytes); each
// step it gives every row an approximate logit and a rigorous interval around the exact one,
// and only the rows whose interval can reach the top m are recomputed with the exact F16
// kernel. Those rows' logits are the full head's, bit for bit, so sampling from them gives
// the tokens the full head gives. The derivation of the bound is in head_screen.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"
#include "util/pages.hpp"

namespace bitnet::model {

struct Weights; // model/weights.hpp

// Reads rows [first, first + count) of an F16 head (k halves each) into dst.
using HeadRowReader = std::function<void(int64_t first, int64_t count, uint16_t* dst)>;

// How the screen's Q8_0 copy is laid out. The intervals hold the exact logits either way, so
// the tokens are the same; only the speed differs (2-vCPU Zen 5, alternated runs):
//   rows    row after row, read by q8_0_gemm: the faster single-sequence pass (decode tg64
//           at 2 threads 2-4 % faster than with groups);
//   groups  kScreenRows rows per group, one per lane (kernels.hpp, q8_0_screen): no per-row
//           lane sums, so several sequences' pass is far cheaper (a 4-sequence decode step
//           1.13-1.17x faster than with rows).
enum class ScreenLayout { rows, groups };

class HeadScreen {
public:
  // Builds the screen of an F16 head of `rows` rows × k (k % 32 == 0), reading the head in
  // chunks through `read` (so the caller decides how the F16 bytes are fetched) on all
  // threads of `pool`.
  HeadScreen(int64_t rows, int64_t k, const HeadRowReader& read, const kernels::Table& table,
             kernels::ThreadPool& pool, ScreenLayout layout = ScreenLayout::rows);

  int64_t rows() const { return rows_; }
  int64_t k() const { return k_; }
  // False when the head holds a non-finite weight: no bound exists, use the exact head.
  bool usable() const { return usable_; }
  // Bytes one bound pass reads: the Q8_0 rows and the two per-row norms.
  uint64_t bytes() const;

  // For the f16-rounded head input x16 (k halves, the operand of the exact head), writes for
  // every row r an interval that holds the float the exact kernel computes:
  //   lower[r] <= f16_gemm(row r, x16) <= upper[r].
  // Returns false, writing nothing, when x16 holds a non-finite value. With n_x inputs (x16:
  // n_x × k; lower, upper: n_x × rows, input t's at t·rows) one pass over the screen bounds
  // them all: batched sequences read it once.
  bool bound(const uint16_t* x16, std::span<float> lower, std::span<float> upper,
             const kernels::Table& table, kernels::ThreadPool& pool, int64_t n_x = 1) const;

private:
  int64_t rows_;
  int64_t k_;
  ScreenLayout layout_;
  bool usable_ = true;
  // The Q8_0 copy (rows: [rows][k/32 × 34] Q8_0 blocks of each row; groups: as q8_0_screen
  // reads it, the last group padded with zero rows), on huge pages: every step streams all of it
  // (349 MB for 2B-4T). On 4 KiB pages (malloc) the bound pass was 1.2-1.5x slower on a 2-vCPU
  // VM, and decode's tg64 ran at 38-48 instead of 63-65 tok/s (2 threads), 19-27 instead of 40
  // (1 thread): TLB walks, and hardware prefetchers that stop at each page's end.
  ZeroedPages q8_;
  std::vector<float> err_norm_; // [rows] >= ‖w − ŵ‖₂ (ŵ: the row's Q8_0 values)
  std::vector<float> q8_norm_;  // [rows] >= ‖ŵ‖₂
};

// The screen of w's output head, built on all threads of `pool`: nullptr when the head is not
// F16 (nothing to screen) or holds a non-finite weight (warned; every step then computes the
// whole head).
std::unique_ptr<HeadScreen> screen_head(const Weights& w, const kernels::Table& table,
                                        kernels::ThreadPool& pool, ScreenLayout layout);

// The rows that can hold one of the m largest values E_r given lower[r] <= E_r <= upper[r]:
// every r with upper[r] >= τ, the m-th largest lower bound, in ascending order into `out`.
// At least m rows have E_r >= lower_r >= τ, so the m-th largest E is >= τ and every row of
// the true top m (ties included) has upper >= E >= τ. 1 <= m <= rows.
void select_candidates(std::span<const float> lower, std::span<const float> upper, int64_t m,
                       std::vector<int32_t>& out);

// One screened head step: the exact logits of every row that can be among the m largest.
struct HeadTop {
  std::vector<int32_t> ids;  // ascending; every row when `full`
  std::vector<float> logits; // the exact head's logits of those rows (bit for bit)
  bool full = false;         // the whole head was computed exactly (the fallback)
  bool screen_read = false;  // the bound pass ran (read the screen's bytes)
};

// Adjusts bounds before the selection: a sampler transform that moves listed ids'
// logits monotonically (a repetition penalty) applies itself to both ends.
using BoundsAdjust = std::function<void(std::span<float> lower, std::span<float> upper)>;

// Candidate counts above this share of the rows cost more than the full head saves, so the
// step computes every row exactly instead (always correct, only slower).
inline constexpr int64_t kFallbackDivisor = 16; // 1/16 = 6.25 % of the vocabulary

// Reusable per-session buffers of screened_top.
struct HeadScratch {
  ScratchVector<float> lower, upper; // [inputs][rows]
  std::vector<uint16_t> rows;        // [n_threads][kHeadReadRows][k] exact rows read
};

// One input of a screened head step: how many of the largest it needs, its bounds' adjustment
// (may be empty), where its result goes.
struct HeadQuery {
  int64_t m;
  const BoundsAdjust* adjust;
  HeadTop* out;
};

// screened_top for several inputs (x16: one row of k halves per query) with one bound pass;
// the exact rows come in one parallel region, and a row several queries want is read once.
void screened_tops(const HeadScreen& screen, const uint16_t* x16,
                   std::span<const HeadQuery> queries, const HeadRowReader& exact_rows,
                   const kernels::Table& table, kernels::ThreadPool& pool, HeadScratch& scratch);

// The exact top-m step: bounds from the screen (when usable and x16 is finite), `adjust`,
// candidates, then the exact F16 logits of the candidates, read through `exact_rows`. Falls
// back to every row when m or the candidate count exceeds rows / kFallbackDivisor.
void screened_top(const HeadScreen& screen, const uint16_t* x16, int64_t m,
                  const BoundsAdjust& adjust, const HeadRowReader& exact_rows,
                  const kernels::Table& table, kernels::ThreadPool& pool, HeadScratch& scratch,
                  HeadTop& out);

} // namespace bitnet::model
