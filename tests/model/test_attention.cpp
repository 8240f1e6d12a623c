// model::Attention against a plain composition of ggml's rules (GgmlAttention) from the scalar
// reference kernels: per query and head, every score, a softmax over the whole padded length,
// and one dot per output over the whole padded length. The attention under test splits the
// work by keys, heads, value rows and query blocks over threads, and skips masked chunks; none
// of that may change a bit, on any ISA, thread count or batch size.
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"
#include "kernels/variants.hpp"
#include "model/attention.hpp"
#include "util/fp16.hpp"

namespace bitnet::model {
namespace {

// 8 query heads over 2 KV heads of 64; 2100 positions: not a multiple of 16, so a batch
// reaching the end pads to the capped length and takes the rounded-probabilities rule. The
// single-token split starts at 2·8·64·n_pad >= 2^20 multiply-adds, i.e. n_pad >= 1024, and
// its V·p takes F16 probabilities from n_pad 2048 on where the table can (AVX-512).
Config small_config() {
  Config c;
  c.n_embd = 512;
  c.n_head = 8;
  c.n_head_kv = 2;
  c.head_dim = 64;
  c.n_rot = 64;
  c.n_layer = 2;
  return c;
}
constexpr int64_t kCtx = 2100;

struct Fixture {
  Config c = small_config();
  KvCache cache;
  std::vector<float> q; // [kCtx][n_embd]: query t is row pos + t

  explicit Fixture(bool f16) : cache(c, kCtx, f16) {
    std::mt19937 rng(5);
    std::normal_distribution<float> d(0.0f, 1.0f);
    const int64_t n = kCtx * c.n_embd_kv();
    for (int64_t il = 0; il < c.n_layer; ++il)
      for (int64_t i = 0; i < n; ++i) {
        const float k = 2.0f * d(rng), v = d(rng);
        const int64_t iv = i / kCtx * cache.v_stride() + i % kCtx; // V's rows are padded
        if (f16) {
          cache.k16(il)[i] = fp32_to_fp16(k);
          cache.v16(il)[iv] = fp32_to_fp16(v);
        } else {
          cache.k32(il)[i] = k;
          cache.v32(il)[iv] = v;
        }
      }
    q.resize(static_cast<size_t>(kCtx * c.n_embd));
    for (float& x : q)
      x = d(rng);
  }
};

float round16(float x) {
  return fp16_to_fp32(fp32_to_fp16(x));
}

// Query (pos + t) of a batch of n_tok, straight from the rules: out[h·head_dim + d].
std::vector<float> reference(Fixture& f, int64_t il, int64_t pos, int64_t n_tok, int64_t t) {
  const Config& c = f.c;
  const kernels::Table& k = kernels::table_scalar();
  const bool f16 = f.cache.is_f16();
  const GgmlAttention rules = GgmlAttention::of(pos, n_tok, kCtx, f16);
  const int64_t hd = c.head_dim, ekv = c.n_embd_kv(), n_kv = pos + t + 1, n = rules.n_pad;
  const float* q = f.q.data() + (pos + t) * c.n_embd;
  std::vector<float> out(static_cast<size_t>(c.n_embd));
  for (int64_t h = 0; h < c.n_head; ++h) {
    const int64_t g = h / (c.n_head / c.n_head_kv);
    std::vector<float> qh(q + h * hd, q + (h + 1) * hd), s(static_cast<size_t>(n), -INFINITY);
    if (rules.round_q)
      for (float& x : qh)
        x = round16(x);
    for (int64_t j = 0; j < n_kv; ++j) {
      if (f16) {
        k.f16_dots(f.cache.k16(il) + j * ekv + g * hd, 0, 1, qh.data(), 0, 1, hd, s.data() + j, 0);
      } else {
        float sum = 0.0f;
        for (int64_t i = 0; i < hd; ++i)
          sum += f.cache.k32(il)[j * ekv + g * hd + i] * qh[static_cast<size_t>(i)];
        s[static_cast<size_t>(j)] = sum;
      }
    }
    k.softmax(s.data(), n, 1.0f / std::sqrt(static_cast<float>(hd)), false);
    if (rules.round_probs)
      for (float& p : s)
        p = round16(p);
    for (int64_t d = 0; d < hd; ++d) {
      float& o = out[static_cast<size_t>(h * hd + d)];
      const int64_t row = (g * hd + d) * f.cache.v_stride();
      if (!f16) {
        o = 0.0f;
        for (int64_t j = 0; j < n; ++j)
          o += f.cache.v32(il)[row + j] * s[static_cast<size_t>(j)];
      } else if (rules.round_probs) {
        k.f16_dots(f.cache.v16(il) + row, 0, 1, s.data(), 0, 1, n, &o, 0);
      } else {
        k.f16_f32_dots(f.cache.v16(il) + row, 0, 1, s.data(), 0, 1, n, &o, 0);
      }
    }
  }
  return out;
}

struct Case {
  int64_t pos;
  int64_t n_tok;
};

void check(bool f16, const std::vector<Case>& cases) {
  Fixture f(f16);
  const int64_t e = f.c.n_embd, il = 1;
  for (const Case& cs : cases) {
    std::vector<std::vector<float>> want;
    for (int64_t t = 0; t < cs.n_tok; ++t)
      want.push_back(reference(f, il, cs.pos, cs.n_tok, t));
    for (kernels::Isa isa : kernels::available_isas()) {
      for (int n_threads : {1, 2, 3}) {
        for (int64_t n_batch : {cs.n_tok, cs.n_tok + 5}) {
          kernels::ThreadPool pool(n_threads);
          Attention attention(f.c, kernels::table_for(isa), n_batch, kCtx, n_threads);
          std::vector<float> out(static_cast<size_t>(cs.n_tok * e), NAN);
          attention.run(f.q.data() + cs.pos * e, cs.n_tok, cs.pos, f.cache, il, out.data(), pool);
          const std::string what = fmt::format(
              "{} cache, {}, pos {} n_tok {}, {} threads, batch {}", f16 ? "F16" : "F32",
              kernels::to_string(isa), cs.pos, cs.n_tok, n_threads, n_batch);
          int64_t bad = 0;
          for (int64_t t = 0; t < cs.n_tok; ++t)
            for (int64_t i = 0; i < e; ++i) {
              const float got = out[static_cast<size_t>(t * e + i)];
              const float exp = want[static_cast<size_t>(t)][static_cast<size_t>(i)];
              if (std::memcmp(&got, &exp, sizeof got) != 0 && bad++ == 0)
                ADD_FAILURE() << what << ": query " << t << " value " << i << " is " << got
                              << ", want " << exp;
            }
          EXPECT_EQ(bad, 0) << what;
        }
      }
    }
  }
}

// A single token: the split over keys, heads and value rows from n_pad 1024 on, inline below;
// F16 probabilities from n_pad 2048 on (AVX-512); lengths with a double tail in
// ggml_vec_dot_f16 (n_pad % 64 == 32) and the capped end.
TEST(Attention, SingleTokenEqualsTheRulesOnEveryIsaAndThreadCount) {
  check(true, {{0, 1},
               {40, 1},
               {1000, 1},
               {1030, 1},
               {1070, 1},
               {2020, 1},
               {2040, 1},
               {2070, 1},
               {2099, 1}});
}

// Batches: one block of queries (1..16) or several, the last with a remainder; each row's
// softmax and ·V over the chunks its mask leaves, the rounded rule at the capped end (2100 % 16
// != 0).
TEST(Attention, BatchEqualsTheRulesOnEveryIsaAndThreadCount) {
  check(true, {{0, 2}, {0, 7}, {30, 3}, {100, 9}, {1000, 13}, {2090, 10}, {0, 37}, {2050, 50}});
}

TEST(Attention, F32CacheEqualsPlainSums) {
  check(false, {{0, 1}, {1050, 1}, {3, 6}, {2090, 10}});
}

} // namespace
} // namespace bitnet::model
