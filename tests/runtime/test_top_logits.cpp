// Session::top_logits, the public top-m exact logits:
// - bitnet.cpp's top-8 logits (ids and floats) of the first 8 steps of every run of every
//   reference fixture come back exactly through the screened head;
// - on every fixture model, over a prompt and 12 steps, for m = 1, 5, 40, n_vocab and above
//   (clamped), the ids and the bits of the logits equal the exact head's: every logit of a
//   model loaded without a screen, stable-sorted by descending value (so equal logits keep
//   the lower id first); also after evaluate(all_logits) and after generate();
// - the screen really prunes (computes only candidate rows) where it applies;
// - crafted exact ties and near-ties in a head are ranked by id, also where m cuts the ties;
// - misuse raises the documented errors.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "../model/reference.hpp"
#include "bitnet/bitnet.hpp"
#include "runtime/sampler.hpp"
#include "runtime/session_impl.hpp"
#include "support/error_kind.hpp"
#include "support/gguf_rewrite.hpp"
#include "support/greedy.hpp"
#include "support/temp_dir.hpp"

namespace bitnet::test {
namespace {

ModelOptions exact_head() { // loads no screen
  ModelOptions o;
  o.head = HeadMode::exact;
  return o;
}

// The expectation, without the library's ordering: every logit, stable-sorted by descending
// value over ascending ids, the first m.
std::vector<TokenLogit> sorted_top(std::span<const float> logits, int64_t m) {
  std::vector<TokenLogit> all(logits.size());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_TRUE(std::isfinite(logits[i])) << "id " << i;
    all[i] = {static_cast<int32_t>(i), logits[i]};
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const TokenLogit& a, const TokenLogit& b) { return a.logit > b.logit; });
  all.resize(static_cast<size_t>(std::min<int64_t>(m, static_cast<int64_t>(all.size()))));
  return all;
}

// Same ids, same float bits, same order.
void expect_same(const std::vector<TokenLogit>& got, const std::vector<TokenLogit>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].id, want[i].id) << what << " rank " << i;
    EXPECT_EQ(std::bit_cast<uint32_t>(got[i].logit), std::bit_cast<uint32_t>(want[i].logit))
        << what << " rank " << i << " id " << got[i].id;
  }
}

// Whether the session's last top_logits() screened: only candidate rows, and no full logits.
bool pruned(const Session& s) {
  return !detail::impl_of(s).top.full && detail::impl_of(s).last.empty();
}

class TopLogits : public ::testing::TestWithParam<FixtureModel> {};

// The reference's top 8 (bitnet.cpp's raw logits, ties by lower id, printed with 9 significant
// digits, which round-trip a float) at the first 8 steps, fed the reference's own tokens.
TEST_P(TopLogits, ReferenceTop8ThroughTheScreen) {
  const FixtureModel& c = GetParam();
  const RefFile ref = load_reference(c.json, c.model);
  const auto model = Model::load(ref.model_path);
  const bool has_screen = model->info().head_screen_bytes > 0;
  EXPECT_EQ(has_screen, model->info().output_type == "F16") << c.name;
  int64_t steps = 0, screened = 0;
  for (const RefRun& run : ref.runs) {
    Session s(model, {.n_ctx = run.n_ctx, .n_threads = 2});
    s.append(run.prompt_ids);
    for (size_t step = 0; step < run.top8.size(); ++step) {
      const std::string what = fmt::format("{} {} step {}", c.name, run.name, step);
      const std::vector<TokenLogit> got = s.top_logits(8);
      ++steps;
      screened += pruned(s);
      ASSERT_EQ(got.size(), 8u) << what;
      for (size_t i = 0; i < 8; ++i) {
        EXPECT_EQ(got[i].id, run.top8[step][i].first) << what << " rank " << i;
        EXPECT_EQ(got[i].logit, static_cast<float>(run.top8[step][i].second))
            << what << " rank " << i;
      }
      s.append(std::span<const int32_t>(&run.gen_ids[step], 1));
    }
  }
  std::printf("%s: top 8 screened (candidates only) at %lld of %lld steps\n", c.name,
              static_cast<long long>(screened), static_cast<long long>(steps));
  if (has_screen)
    EXPECT_GT(screened, steps * 9 / 10) << c.name;
  else
    EXPECT_EQ(screened, 0) << c.name;
}

TEST_P(TopLogits, EqualsTheExactHeadSorted) {
  const FixtureModel& c = GetParam();
  const RefFile ref = load_reference(c.json, c.model);
  const auto model = Model::load(ref.model_path);
  const auto exact_model = Model::load(ref.model_path, exact_head());
  ASSERT_EQ(exact_model->info().head_screen_bytes, 0u);
  const bool has_screen = model->info().head_screen_bytes > 0;
  const int64_t n_vocab = model->info().n_vocab;
  const std::vector<int32_t>& prompt = ref.runs[0].prompt_ids;
  const SessionParams params{.n_ctx = 256, .n_threads = 2};
  Session screened(model, params);
  Session exact(exact_model, params);
  screened.append(prompt);
  exact.append(prompt);
  const int32_t small_m[] = {1, 5, 40};
  int64_t pruned_steps[3] = {};
  const int kSteps = 12;
  for (int step = 0; step <= kSteps; ++step) {
    const std::span<const float> all = exact.logits();
    ASSERT_EQ(static_cast<int64_t>(all.size()), n_vocab);
    for (size_t i = 0; i < 3; ++i) {
      const int32_t m = small_m[i];
      const std::string what = fmt::format("{} step {} m={}", c.name, step, m);
      expect_same(screened.top_logits(m), sorted_top(all, m), what + " screened");
      pruned_steps[i] += pruned(screened);
      expect_same(exact.top_logits(m), sorted_top(all, m), what + " exact model");
    }
    // m >= n_vocab is clamped: the whole vocabulary, ranked (the screen cannot help).
    for (const int64_t m : {n_vocab, n_vocab + 1, int64_t{std::numeric_limits<int32_t>::max()}}) {
      const std::string what = fmt::format("{} step {} m={}", c.name, step, m);
      expect_same(screened.top_logits(static_cast<int32_t>(m)), sorted_top(all, n_vocab), what);
    }
    // HeadMode::exact on the screened model: its full logits, the same bits.
    expect_same(screened.top_logits(5, HeadMode::exact), sorted_top(all, 5),
                fmt::format("{} step {} head=exact", c.name, step));
    ASSERT_TRUE(std::equal(
        all.begin(), all.end(), screened.logits().begin(), screened.logits().end(),
        [](float a, float b) { return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b); }));
    const int32_t next = sorted_top(all, 1)[0].id; // greedy
    screened.append(std::span<const int32_t>(&next, 1));
    exact.append(std::span<const int32_t>(&next, 1));
  }
  for (size_t i = 0; i < 3; ++i)
    std::printf("%s: m=%d screened at %lld of %d positions\n", c.name, small_m[i],
                static_cast<long long>(pruned_steps[i]), kSteps + 1);
  if (has_screen) {
    EXPECT_GT(pruned_steps[0], kSteps * 9 / 10) << c.name << " m=1";
    EXPECT_GT(pruned_steps[1], kSteps * 9 / 10) << c.name << " m=5";
  } else {
    EXPECT_EQ(pruned_steps[0] + pruned_steps[1] + pruned_steps[2], 0) << c.name;
  }

  // After evaluate(all_logits): the last row of what it returned.
  Session batch(model, params);
  const std::span<const float> rows = batch.evaluate(prompt, true);
  const auto last = rows.subspan(rows.size() - static_cast<size_t>(n_vocab));
  const std::vector<float> last_row(last.begin(), last.end());
  expect_same(batch.top_logits(5), sorted_top(last_row, 5), std::string(c.name) + " all_logits");

  // After generate(): the last generated token's, screened where it applies.
  Session gen(model, params);
  const Stats st = generate(gen, prompt, greedy(4));
  ASSERT_EQ(st.generated_ids.size(), 4u);
  const std::vector<TokenLogit> got = gen.top_logits(5);
  EXPECT_EQ(pruned(gen), has_screen) << c.name << " after generate";
  Session check(exact_model, params); // fed as generate() feeds: the prompt, then one by one
  check.append(prompt);
  for (const int32_t& id : st.generated_ids)
    check.append(std::span<const int32_t>(&id, 1));
  expect_same(got, sorted_top(check.logits(), 5), std::string(c.name) + " after generate");
}

INSTANTIATE_TEST_SUITE_P(Models, TopLogits, ::testing::ValuesIn(kFixtureModels),
                         [](const ::testing::TestParamInfo<FixtureModel>& info) {
                           return std::string(info.param.name);
                         });

// Model D has a separate F16 output.weight, so its hidden state does not depend on the head.
// Rows copied from the prompt's winner w tie with it exactly (the same weights, the same
// kernel); two more copies with one weight one f16 ulp larger / smaller in magnitude land
// just above and below it (or on it). The ranking must put equal logits in id order, also
// where m cuts the tied group, and the screen must keep every tied row.
TEST(TopLogits, CraftedTiesRankByLowerId) {
  const RefFile ref = load_reference("reference/D.json");
  const std::vector<int32_t>& prompt = ref.runs[0].prompt_ids;
  const SessionParams params{.n_ctx = 256, .n_threads = 2};
  const auto original = Model::load(ref.model_path, exact_head());
  Session probe(original, params);
  probe.append(prompt);
  const int32_t w = sorted_top(probe.logits(), 1)[0].id;
  const int64_t n_embd = original->info().n_embd;
  ASSERT_EQ(original->info().output_type, "F16");

  const auto pick = [&](std::initializer_list<int32_t> from, size_t n) {
    std::vector<int32_t> out;
    for (int32_t id : from)
      if (id != w && out.size() < n) out.push_back(id);
    return out;
  };
  const std::vector<int32_t> copies = pick({2, 300, 677, 3, 301}, 3);
  const std::vector<int32_t> nudged = pick({1, 299, 4, 298}, 2);
  GgufEdit edit;
  edit.patch["output.weight"] = [&](std::vector<uint8_t>& bytes) {
    const size_t row = static_cast<size_t>(n_embd) * sizeof(uint16_t);
    ASSERT_EQ(bytes.size(), row * static_cast<size_t>(original->info().n_vocab));
    for (int32_t id : copies)
      std::memcpy(&bytes[static_cast<size_t>(id) * row], &bytes[static_cast<size_t>(w) * row], row);
    for (size_t i = 0; i < nudged.size(); ++i) {
      uint8_t* dst = &bytes[static_cast<size_t>(nudged[i]) * row];
      std::memcpy(dst, &bytes[static_cast<size_t>(w) * row], row);
      for (int64_t j = 0; j < n_embd; ++j) { // the first weight that is finite and not zero
        uint16_t h;
        std::memcpy(&h, dst + j * 2, 2);
        if ((h & 0x7FFF) == 0 || (h & 0x7C00) == 0x7C00) continue;
        h = static_cast<uint16_t>(i == 0 ? h + 1 : h - 1); // one ulp up / down in magnitude
        std::memcpy(dst + j * 2, &h, 2);
        break;
      }
    }
  };
  const TempDir dir;
  const std::string path = dir.file("D-ties.gguf");
  rewrite_gguf(ref.model_path, path, edit);

  const auto model = Model::load(path);
  const auto exact_model = Model::load(path, exact_head());
  ASSERT_GT(model->info().head_screen_bytes, 0u);
  Session exact(exact_model, params);
  exact.append(prompt);
  const std::span<const float> all = exact.logits();
  std::vector<int32_t> tied = copies;
  tied.push_back(w);
  std::sort(tied.begin(), tied.end());
  const uint32_t top_bits = std::bit_cast<uint32_t>(all[static_cast<size_t>(w)]);
  for (int32_t id : tied)
    ASSERT_EQ(std::bit_cast<uint32_t>(all[static_cast<size_t>(id)]), top_bits) << "id " << id;
  const auto above = std::count_if(all.begin(), all.end(),
                                   [&](float v) { return v > all[static_cast<size_t>(w)]; });
  ASSERT_LE(above, 1); // only a nudged row can beat w
  std::printf(
      "winner %d, tied rows %zu, nudged rows: %d %+.9g, %d %+.9g, above %d\n", w, tied.size(),
      nudged[0],
      static_cast<double>(all[static_cast<size_t>(nudged[0])] - all[static_cast<size_t>(w)]),
      nudged[1],
      static_cast<double>(all[static_cast<size_t>(nudged[1])] - all[static_cast<size_t>(w)]),
      static_cast<int>(above));

  for (int32_t m = 1; m <= 8; ++m) {
    Session s(model, params);
    s.append(prompt);
    const std::vector<TokenLogit> got = s.top_logits(m);
    const std::string what = fmt::format("m={}", m);
    EXPECT_TRUE(pruned(s)) << what;
    expect_same(got, sorted_top(all, m), what);
    // The spec, directly: after the rows above w, the tied rows in ascending id order, as
    // many as fit in m.
    const auto n_tied =
        static_cast<size_t>(std::clamp<int64_t>(m - above, 0, static_cast<int64_t>(tied.size())));
    ASSERT_GE(got.size(), static_cast<size_t>(above) + n_tied) << what;
    for (size_t i = 0; i < n_tied; ++i) {
      EXPECT_EQ(got[static_cast<size_t>(above) + i].id, tied[i]) << what << " tie " << i;
      EXPECT_EQ(std::bit_cast<uint32_t>(got[static_cast<size_t>(above) + i].logit), top_bits);
    }
  }
}

// The documented order on hand-picked values: descending logit, equal logits by ascending
// id, NaN (a non-finite hidden state's) after every number, -inf included.
TEST(TopLogits, RankingOrder) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<TokenLogit> v = {{5, 1.0f}, {2, nan},  {3, 1.0f},  {0, -inf},
                               {1, nan},  {4, 2.0f}, {6, -0.0f}, {7, 0.0f}};
  std::sort(v.begin(), v.end(), runtime::ranks_before);
  const int32_t want[] = {4, 3, 5, 6, 7, 0, 1, 2};
  for (size_t i = 0; i < v.size(); ++i)
    EXPECT_EQ(v[i].id, want[i]) << "rank " << i;
}

TEST(TopLogits, MisuseRaisesTheDocumentedErrors) {
  const auto model = Model::load(data_path("real-tiny/bitnet-tiny-brown.gguf"));
  Session s(model, {.n_ctx = 16, .n_threads = 2});
  EXPECT_EQ(error_kind([&] { s.top_logits(1); }), ErrorKind::invalid_input); // nothing evaluated
  const std::vector<int32_t> ids = {1, 2, 3};
  s.append(ids);
  EXPECT_EQ(s.n_past(), 3);
  EXPECT_EQ(error_kind([&] { s.top_logits(0); }), ErrorKind::invalid_argument);
  EXPECT_EQ(error_kind([&] { s.top_logits(-3); }), ErrorKind::invalid_argument);
  EXPECT_EQ(s.top_logits(3).size(), 3u);
  // append() checks as evaluate() does, and evaluates nothing when it throws.
  EXPECT_EQ(error_kind([&] { s.append({}); }), ErrorKind::invalid_input);
  const std::vector<int32_t> bad = {model->info().n_vocab};
  EXPECT_EQ(error_kind([&] { s.append(bad); }), ErrorKind::invalid_input);
  const std::vector<int32_t> too_many(14, 1);
  EXPECT_EQ(error_kind([&] { s.append(too_many); }), ErrorKind::context_overflow);
  EXPECT_EQ(s.n_past(), 3);
  s.truncate(2);
  EXPECT_EQ(error_kind([&] { s.top_logits(1); }), ErrorKind::invalid_input);
  s.append(std::vector<int32_t>{3});
  EXPECT_EQ(s.top_logits(1).size(), 1u);
  s.clear();
  EXPECT_EQ(error_kind([&] { s.top_logits(1); }), ErrorKind::invalid_input);
}

} // namespace
} // namespace bitnet::test
