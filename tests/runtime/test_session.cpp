// Session state and the model's memory safety: clear() behaves as a fresh session, tensor
// data at any legal alignment gives the same logits, and the KV cache is bounded by the
// memory this process may use.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "bitnet/bitnet.hpp"
#include "gguf/gguf.hpp"
#include "model/kv_cache.hpp"
#include "runtime/session_impl.hpp"
#include "support/cli_runner.hpp"
#include "support/gguf_rewrite.hpp"

namespace bitnet::test {
namespace {

SessionParams small_params() {
  SessionParams p;
  p.n_ctx = 128;
  p.n_threads = 2;
  return p;
}

std::vector<float> logits_of(Session& s, const std::vector<int32_t>& ids) {
  const auto l = s.evaluate(ids);
  return {l.begin(), l.end()};
}

// clear() used to keep the old V values, and attention reads V over the padded KV length
// (times a zero probability): a stale inf there becomes NaN. Here the first evaluation's
// positions are overwritten with +inf (what an f16 overflow leaves) before clear().
TEST(Session, ClearBehavesAsAFreshSession) {
  const auto model = Model::load(tiny_model());
  const std::vector<int32_t> first = model->tokenizer().tokenize(
      "The jury said it did find that the moment's musicians were", true);
  const std::vector<int32_t> second = model->tokenizer().tokenize("He said", true);
  ASSERT_GT(first.size(), second.size());
  Session fresh(model, small_params());
  Session reused(model, small_params());
  reused.evaluate(first);
  model::KvCache& cache = detail::impl_of(reused).cache;
  const uint16_t f16_inf = 0x7C00;
  for (int64_t il = 0; il < model->info().n_layer; ++il)
    for (int64_t d = 0; d < cache.n_embd_kv(); ++d)
      for (size_t pos = 0; pos < first.size(); ++pos)
        cache.v16(il)[d * cache.v_stride() + static_cast<int64_t>(pos)] = f16_inf;
  reused.clear();
  EXPECT_EQ(reused.n_past(), 0);
  EXPECT_TRUE(reused.logits().empty());
  const std::vector<float> expected = logits_of(fresh, second);
  const std::vector<float> got = logits_of(reused, second);
  for (float v : got)
    ASSERT_TRUE(std::isfinite(v));
  EXPECT_EQ(got, expected);
  // And the next step continues as in the fresh session.
  EXPECT_EQ(logits_of(reused, {42}), logits_of(fresh, {42}));
}

// truncate(n) keeps the first n positions; the forgotten ones must read as a fresh cache's.
TEST(Session, TruncateForgetsAsIfNeverEvaluated) {
  const auto model = Model::load(tiny_model());
  const std::vector<int32_t> first = model->tokenizer().tokenize(
      "The jury said it did find that the moment's musicians were", true);
  const std::vector<int32_t> kept(first.begin(), first.begin() + 5);
  const std::vector<int32_t> next = model->tokenizer().tokenize(" of the", false);
  Session fresh(model, small_params());
  Session reused(model, small_params());
  fresh.evaluate(kept);
  reused.evaluate(first);
  model::KvCache& cache = detail::impl_of(reused).cache;
  for (int64_t il = 0; il < model->info().n_layer; ++il)
    for (int64_t d = 0; d < cache.n_embd_kv(); ++d)
      for (size_t pos = kept.size(); pos < first.size(); ++pos)
        cache.v16(il)[d * cache.v_stride() + static_cast<int64_t>(pos)] = 0x7C00; // +inf
  reused.truncate(static_cast<int32_t>(kept.size()));
  EXPECT_EQ(logits_of(reused, next), logits_of(fresh, next));
}

// F16 data was read through uint16_t* even at general.alignment 1 or 2 (misaligned reads,
// undefined behaviour); F32 norms at alignment 2 were refused. Now both are read from an
// aligned copy, so the logits equal those of the aligned file.
TEST(Session, TensorDataAtAnyAlignmentGivesTheSameLogits) {
  const auto model = Model::load(tiny_model());
  const std::vector<int32_t> ids = model->tokenizer().tokenize("The jury said it did find", true);
  Session aligned(model, small_params());
  const std::vector<float> expected = logits_of(aligned, ids);
  for (uint32_t alignment : {1u, 2u}) {
    TempDir dir;
    // Shift the data so that token_embd (F16) starts at an odd address (alignment 1) or the
    // F32 norms at 2 mod 4 (alignment 2).
    bool misaligned = false;
    for (uint64_t shift = alignment; shift <= 4 && !misaligned; shift += alignment) {
      GgufEdit edit;
      edit.alignment = alignment;
      edit.shift = shift;
      rewrite_gguf(tiny_model(), dir.file("m.gguf"), edit);
      const gguf::File f = gguf::File::open(dir.file("m.gguf"));
      const auto addr = reinterpret_cast<uintptr_t>(
          f.tensor_data(
               *f.find_tensor(alignment == 1 ? "token_embd.weight" : "blk.0.attn_norm.weight"))
              .data());
      misaligned = alignment == 1 ? addr % 2 == 1 : addr % 4 == 2;
    }
    ASSERT_TRUE(misaligned) << "alignment " << alignment;
    const auto shifted = Model::load(dir.file("m.gguf"));
    Session s(shifted, small_params());
    EXPECT_EQ(logits_of(s, ids), expected) << "alignment " << alignment;
  }
}

// A KV cache that cannot fit in memory is refused before anything is allocated.
TEST(Session, KvCacheBeyondMemoryIsRefused) {
  model::Config c;
  c.n_layer = 1024;
  c.n_head_kv = 512;
  c.head_dim = 128; // 1024 layers x 2^24 positions x 65536 x 2 x 4 bytes: 2^53 bytes
  try {
    model::KvCache cache(c, int64_t{1} << 24, false);
    FAIL() << "allocated " << cache.bytes() << " bytes";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("a context of 16777216 positions needs a 8388608.0 GiB "
                                         "KV cache, more than the "),
              std::string::npos)
        << e.what();
  }
}

// n_ctx 0 takes the model's context length, up to kMaxDefaultCtx.
TEST(Session, DefaultContextIsTheModelsUpToTheLimit) {
  EXPECT_EQ(Session(Model::load(tiny_model()), {}).n_ctx(), 256);
  TempDir dir;
  GgufEdit edit;
  edit.set.emplace("bitnet-b1.58.context_length", gguf::Value::u32(1u << 20));
  rewrite_gguf(tiny_model(), dir.file("m.gguf"), edit);
  const Session s(Model::load(dir.file("m.gguf")), {});
  EXPECT_EQ(s.n_ctx(), kMaxDefaultCtx);
  EXPECT_EQ(s.kv_bytes(),
            model::KvCache::bytes_for(detail::impl_of(*Model::load(tiny_model())).config,
                                      kMaxDefaultCtx, true));
}

} // namespace
} // namespace bitnet::test
