// Greedy parity with bitnet.cpp on every reference model and prompt, on every kernel variant
// compiled into this binary and with 1 and 2 threads (tests/data/reference/README.md,
// real-tiny/README.md). A variant this CPU lacks is reported as SKIPPED, never left out
// silently. The forward pass is driven directly with the fixtures' prompt ids, so each kernel
// variant can be chosen and no tokenizer is involved: the aarch64 cross build, which has no
// tokenizer, runs this test under qemu (scripts/test_aarch64.sh). Both output heads run: the
// full exact head, and the screened one asked for the top 8 (the reference's top-8 logits
// must be among its exactly computed rows, equal).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "gguf/gguf.hpp"
#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"
#include "model/config.hpp"
#include "model/forward.hpp"
#include "model/head_screen.hpp"
#include "model/weights.hpp"
#include "reference.hpp"

namespace bitnet::test {
namespace {

struct Fixture {
  const char* json;
  const char* model; // "" = the JSON's model.file
  const char* name;
};

// The forward pass reproduces the reference's float arithmetic (RoPE's fused multiply-adds,
// ggml's vectorised expf in softmax and SiLU, the F16/Q8_0 dot-product orders), so every
// generated id of every run matches, and the reference top-8 logits of the first 8 steps are
// equal floats (they are printed with 9 significant digits, which round-trip a float).
const Fixture kFixtures[] = {
    {"reference/A.json", "", "A"},
    {"reference/B.json", "", "B"},
    {"reference/C.json", "", "C"},
    {"reference/D.json", "", "D"},
    {"real-tiny/reference.json", "real-tiny/bitnet-tiny-brown.gguf", "real_tiny"},
};

// One prompt of one fixture on one compiled kernel variant.
struct Case {
  const Fixture* fixture;
  std::string prompt;
  kernels::Isa isa;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.fixture->json << " " << c.prompt << " " << kernels::to_string(c.isa);
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const Fixture& fx : kFixtures)
    for (const RefRun& run : load_reference(fx.json, fx.model).runs)
      for (kernels::Isa isa : kernels::compiled_isas())
        cases.push_back({&fx, run.name, isa});
  return cases;
}

int32_t argmax(const float* logits, int64_t n) {
  return static_cast<int32_t>(std::max_element(logits, logits + n) - logits); // first = lower id
}

struct Greedy {
  std::vector<int32_t> ids;
  std::vector<std::vector<float>> first_logits; // logits of the first steps
};

// The parts of a loaded model the forward pass reads, with the head's screen as Model::load
// builds it by default (Model::load also builds the tokenizer, which this test does not need).
struct Loaded {
  explicit Loaded(const std::string& path)
      : file(gguf::File::open(path)), config(model::load_config(file)),
        weights(model::bind_weights(file, config)) {
    weights.file = &file;
    kernels::ThreadPool pool(2);
    screen = model::screen_head(weights, kernels::table(), pool, model::ScreenLayout::rows);
    weights.head_screen = screen.get();
  }
  Loaded(const Loaded&) = delete; // weights point into file
  Loaded& operator=(const Loaded&) = delete;
  gguf::File file;
  model::Config config;
  model::Weights weights;
  std::unique_ptr<model::HeadScreen> screen;
};

// screened: each step's logits are the screened head's top 8 (rows outside its candidates
// read as -inf), else the full head's.
Greedy run_greedy(const Loaded& m, const kernels::Table& table, int n_threads, const RefRun& run,
                  size_t keep_steps, bool screened) {
  const auto n_prompt = static_cast<int64_t>(run.prompt_ids.size());
  model::KvCache cache(m.config, run.n_ctx, true);
  kernels::ThreadPool pool(n_threads);
  model::Transformer tf(m.config, m.weights, table, n_prompt, run.n_ctx, n_threads);
  std::vector<float> logits(static_cast<size_t>(m.config.n_vocab));
  model::HeadTop top;
  const auto forward = [&](std::span<const int32_t> ids, int64_t pos) {
    if (!screened) return tf.forward(ids, pos, cache, pool, false, logits.data());
    tf.forward_hidden(ids, pos, cache, pool);
    tf.head().top(tf.hidden().data(), 8, true, {}, pool, top);
    std::fill(logits.begin(), logits.end(), -INFINITY);
    for (size_t i = 0; i < top.ids.size(); ++i)
      logits[static_cast<size_t>(top.ids[i])] = top.logits[i];
  };
  Greedy g;
  forward(run.prompt_ids, 0);
  int64_t pos = n_prompt;
  for (size_t step = 0; step < run.gen_ids.size(); ++step) {
    if (step < keep_steps) g.first_logits.push_back(logits);
    const int32_t id = argmax(logits.data(), m.config.n_vocab);
    g.ids.push_back(id);
    if (step + 1 == run.gen_ids.size()) break;
    const int32_t one[1] = {id};
    forward(one, pos++);
  }
  return g;
}

class Parity : public ::testing::TestWithParam<Case> {};

TEST_P(Parity, GreedyIdsAndFirstLogitsMatchBitnetCpp) {
  const Case& c = GetParam();
  const std::vector<kernels::Isa> available = kernels::available_isas();
  if (std::find(available.begin(), available.end(), c.isa) == available.end())
    GTEST_SKIP() << "SKIPPED (cpu lacks " << kernels::to_string(c.isa) << ")";
  const RefFile ref = load_reference(c.fixture->json, c.fixture->model);
  const auto run = std::find_if(ref.runs.begin(), ref.runs.end(),
                                [&](const RefRun& r) { return r.name == c.prompt; });
  ASSERT_NE(run, ref.runs.end());
  const Loaded m(ref.model_path);
  const kernels::Table& table = kernels::table_for(c.isa);
  // Every F16 head has a screen (the default), so the screened runs really screen.
  EXPECT_EQ(m.weights.head_screen != nullptr, m.weights.output.type == gguf::TensorType::F16);
  for (int threads : {1, 2})
    for (bool screened : {false, true}) {
      const std::string what =
          fmt::format("{} {} isa={} threads={} head={}", c.fixture->json, run->name,
                      kernels::to_string(c.isa), threads, screened ? "screened" : "exact");
      const Greedy g = run_greedy(m, table, threads, *run, run->top8.size(), screened);
      expect_same_ids(g.ids, *run, what);
      for (size_t step = 0; step < run->top8.size(); ++step)
        for (const auto& [id, logit] : run->top8[step])
          EXPECT_EQ(g.first_logits[step][static_cast<size_t>(id)], static_cast<float>(logit))
              << what << " step " << step << " id " << id;
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Parity, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return fmt::format("{}_{}_{}", info.param.fixture->name,
                                              info.param.prompt,
                                              kernels::to_string(info.param.isa));
                         });

} // namespace
} // namespace bitnet::test
