// Batched decoding (bitnet/batch.hpp): several sessions decoded in one forward must each get
// exactly the numerics of decoding alone. Checked against two independent expectations:
// bitnet.cpp's greedy tokens (the reference fixtures, every prompt of a fixture batched
// together) and the same session decoded alone (every logit, bit for bit). Every kernel
// variant this CPU runs, 1 and 2 threads; a compiled variant it lacks is reported SKIPPED.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "../model/reference.hpp"
#include "bitnet/bitnet.hpp"
#include "kernels/kernels.hpp"
#include "support/error_kind.hpp"
#include "support/greedy.hpp"

namespace bitnet::test {
namespace {

// The kernel variants this CPU runs (sessions take the selected one when constructed); the
// compiled ones it lacks are named as skipped. Restores the best variant afterwards.
template <typename F> void for_each_isa(F&& f) {
  const std::vector<kernels::Isa> available = kernels::available_isas();
  for (kernels::Isa isa : kernels::compiled_isas()) {
    if (std::find(available.begin(), available.end(), isa) == available.end()) {
      std::cout << "SKIPPED (cpu lacks " << kernels::to_string(isa) << ")\n";
      continue;
    }
    kernels::select_isa(kernels::to_string(isa));
    f(std::string(kernels::to_string(isa)));
  }
  kernels::select_isa(kernels::to_string(available.back()));
}

// Generations stepped together as a server steps them: their prompts prefilled together
// (prefill_batch), the first head steps in one prepare_next(), then every step one next() per
// running sequence and one decode_batch over them (which prepares the next head steps).
std::vector<Stats> generate_together(std::vector<std::unique_ptr<Generation>>& gens) {
  std::vector<Generation*> all;
  for (auto& g : gens)
    all.push_back(g.get());
  while (std::any_of(all.begin(), all.end(), [](auto* g) { return g->prefill_left() > 0; }))
    prefill_batch(all);
  prepare_next(all);
  for (;;) {
    std::vector<Generation*> step;
    for (auto& g : gens)
      if (!g->done()) {
        g->next();
        step.push_back(g.get());
      }
    if (step.empty()) break;
    decode_batch(step);
  }
  std::vector<Stats> out;
  for (auto& g : gens)
    out.push_back(g->stats());
  return out;
}

struct Fixture {
  const char* json;
  const char* model;
};

class BatchParity : public ::testing::TestWithParam<Fixture> {};

// Every prompt of a fixture generated at once, each in its own session (its own context
// size), all sharing one pool: each gives bitnet.cpp's tokens.
TEST_P(BatchParity, PromptsGeneratedTogetherGiveBitnetCppTokens) {
  const RefFile ref = load_reference(GetParam().json, GetParam().model);
  ASSERT_GE(ref.runs.size(), 2u);
  const auto model = Model::load(ref.model_path);
  // The head step runs per session, untouched by batching (test_model_parity covers both
  // heads); generations use the default, screened.
  for_each_isa([&](const std::string& isa) {
    for (int threads : {1, 2}) {
      const auto pool = std::make_shared<ThreadPool>(threads);
      std::vector<std::unique_ptr<Session>> sessions;
      std::vector<std::unique_ptr<Generation>> gens;
      for (const RefRun& run : ref.runs) {
        sessions.push_back(
            std::make_unique<Session>(model, SessionParams{.n_ctx = run.n_ctx, .pool = pool}));
        gens.push_back(std::make_unique<Generation>(
            *sessions.back(), run.prompt_ids, greedy(static_cast<int32_t>(run.gen_ids.size()))));
      }
      const std::vector<Stats> stats = generate_together(gens);
      for (size_t i = 0; i < ref.runs.size(); ++i)
        expect_same_ids(stats[i].generated_ids, ref.runs[i],
                        fmt::format("{} {} isa={} threads={}", GetParam().json, ref.runs[i].name,
                                    isa, threads));
    }
  });
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, BatchParity,
    ::testing::Values(Fixture{"reference/A.json", ""}, Fixture{"reference/B.json", ""},
                      Fixture{"reference/C.json", ""}, Fixture{"reference/D.json", ""},
                      Fixture{"real-tiny/reference.json", "real-tiny/bitnet-tiny-brown.gguf"}));

// Greedy decoding of `prompts`, each step's full logits recorded: alone (one session at a
// time) or batched (one decode_batch per step over all sessions, sharing one pool).
std::vector<std::vector<std::vector<float>>>
decode_logits(const std::shared_ptr<Model>& model, const std::vector<std::vector<int32_t>>& prompts,
              const std::vector<int32_t>& n_ctx, KvType kv, int threads, int steps, bool batched) {
  const auto pool = std::make_shared<ThreadPool>(threads);
  std::vector<std::unique_ptr<Session>> sessions;
  for (size_t i = 0; i < prompts.size(); ++i)
    sessions.push_back(std::make_unique<Session>(
        model, SessionParams{.n_ctx = n_ctx[i], .kv_type = kv, .pool = pool}));
  std::vector<std::vector<std::vector<float>>> logits(prompts.size());
  const auto record = [&](size_t i) {
    const std::span<const float> l = sessions[i]->logits();
    logits[i].emplace_back(l.begin(), l.end());
    return argmax(l);
  };
  if (!batched) {
    for (size_t i = 0; i < prompts.size(); ++i) {
      sessions[i]->evaluate(prompts[i]);
      for (int step = 0; step < steps; ++step) {
        const int32_t id[1] = {record(i)};
        sessions[i]->evaluate(id);
      }
    }
    return logits;
  }
  std::vector<Session*> all;
  for (size_t i = 0; i < prompts.size(); ++i) {
    sessions[i]->evaluate(prompts[i]);
    all.push_back(sessions[i].get());
  }
  for (int step = 0; step < steps; ++step) {
    std::vector<int32_t> ids;
    for (size_t i = 0; i < prompts.size(); ++i)
      ids.push_back(record(i));
    decode_batch(all, ids);
  }
  return logits;
}

// Every logit of every step, batched or alone, with either cache type; the sessions differ
// in prompt length and context size (the largest context is not the first session's).
TEST(Batch, EveryLogitEqualsDecodingAlone) {
  const auto model = Model::load(data_path("real-tiny/bitnet-tiny-brown.gguf"));
  const Tokenizer& tok = model->tokenizer();
  const std::vector<std::vector<int32_t>> prompts = {
      tok.tokenize("The jury said", true),
      tok.tokenize("It was a long time before the house was quiet again, and", true),
      tok.tokenize("He", true), tok.tokenize("Mr. and Mrs. Dursley of number four", true)};
  const std::vector<int32_t> n_ctx = {64, 96, 200, 64};
  const int steps = 12;
  for_each_isa([&](const std::string& isa) {
    for (KvType kv : {KvType::f16, KvType::f32})
      for (int threads : {1, 2}) {
        const auto alone = decode_logits(model, prompts, n_ctx, kv, threads, steps, false);
        const auto batched = decode_logits(model, prompts, n_ctx, kv, threads, steps, true);
        for (size_t i = 0; i < prompts.size(); ++i)
          for (int step = 0; step < steps; ++step)
            ASSERT_EQ(batched[i][static_cast<size_t>(step)], alone[i][static_cast<size_t>(step)])
                << "isa=" << isa << " kv=" << (kv == KvType::f16 ? "f16" : "f32")
                << " threads=" << threads << " sequence " << i << " step " << step;
      }
  });
}

// Long sequences beside short ones: a query past ~2k positions of this model is split over the
// threads (attention.cpp kSplitMacs), the short ones run whole, one per thread. Both mixes, one
// long sequence among short ones and two long ones, give every logit of decoding alone.
TEST(Batch, LongAndShortSequencesTogetherEqualDecodingAlone) {
  const auto model = Model::load(data_path("real-tiny/bitnet-tiny-brown.gguf"));
  const Tokenizer& tok = model->tokenizer();
  std::vector<int32_t> text = tok.tokenize("The jury said it did find that the city", true);
  while (text.size() < 2100) {
    const std::vector<int32_t> more = tok.tokenize(" and the jury said it would not", false);
    text.insert(text.end(), more.begin(), more.end());
  }
  const auto prefix = [&](size_t n) {
    return std::vector<int32_t>(text.begin(), text.begin() + n);
  };
  const int steps = 4;
  for (const auto& prompts :
       {std::vector<std::vector<int32_t>>{prefix(2090), prefix(7), prefix(12), prefix(30)},
        std::vector<std::vector<int32_t>>{prefix(2090), prefix(2070), prefix(9), prefix(40)}}) {
    const std::vector<int32_t> n_ctx(prompts.size(), 2112);
    const auto alone = decode_logits(model, prompts, n_ctx, KvType::f16, 2, steps, false);
    const auto batched = decode_logits(model, prompts, n_ctx, KvType::f16, 2, steps, true);
    for (size_t i = 0; i < prompts.size(); ++i)
      for (int step = 0; step < steps; ++step)
        ASSERT_EQ(batched[i][static_cast<size_t>(step)], alone[i][static_cast<size_t>(step)])
            << "sequence " << i << " of " << prompts[1].size() << "-token second prompt, step "
            << step;
  }
}

// Sampling chains (top-k, penalties that move the screened head's bounds, seeds) stepped
// together, their screened head steps batched too: each sequence's tokens are generate()'s
// alone.
TEST(Batch, SampledGenerationsTogetherAreGenerateAlone) {
  const auto model = Model::load(data_path("real-tiny/bitnet-tiny-brown.gguf"));
  const std::vector<std::string> prompts = {"The jury said", "He was a man of", "It"};
  const auto params = [](size_t i) {
    GenerateParams p;
    p.n_predict = 20;
    p.ignore_eos = true;
    p.sampler.seed = 11 + i;
    p.sampler.repeat_penalty = 1.3f;
    p.sampler.temp = i == 2 ? 0.0f : 0.9f;
    return p;
  };
  for_each_isa([&](const std::string& isa) {
    const auto pool = std::make_shared<ThreadPool>(2);
    std::vector<std::unique_ptr<Session>> sessions;
    std::vector<std::unique_ptr<Generation>> gens;
    for (size_t i = 0; i < prompts.size(); ++i) {
      sessions.push_back(
          std::make_unique<Session>(model, SessionParams{.n_ctx = 64, .pool = pool}));
      gens.push_back(std::make_unique<Generation>(*sessions.back(), prompts[i], params(i)));
    }
    const std::vector<Stats> together = generate_together(gens);
    for (size_t i = 0; i < prompts.size(); ++i) {
      Session alone(model, {.n_ctx = 64, .pool = pool});
      const Stats expected = generate(alone, prompts[i], params(i));
      EXPECT_EQ(together[i].generated_ids, expected.generated_ids) << isa << " sequence " << i;
      // screened: some steps computed fewer rows than the vocabulary
      EXPECT_EQ(together[i].head, HeadMode::screened);
      EXPECT_LT(*std::min_element(together[i].head_rows.begin(), together[i].head_rows.end()),
                model->info().n_vocab);
    }
  });
}

// Generations admitted at different steps, as a server admits requests, stepped by
// step_batch(): each step's new tokens and the next micro-batch of every prompt still
// prefilling go in one forward (two when their rows exceed n_batch 4), the head steps in one
// pass. Each sequence's tokens are generate()'s alone, greedy and sampled.
TEST(Batch, StepsAdmittingPromptsAreGenerateAlone) {
  const auto model = Model::load(data_path("real-tiny/bitnet-tiny-brown.gguf"));
  const std::vector<std::string> prompts = {
      "The jury said it did find that the moment's musicians were", "He was a man of", "It",
      "It was a long time before the house was quiet"};
  const std::vector<int> admitted_at = {0, 0, 2, 5};
  const auto params = [](size_t i) {
    GenerateParams p;
    p.n_predict = 12;
    p.ignore_eos = true;
    p.sampler.seed = 5 + i;
    p.sampler.repeat_penalty = 1.2f;
    p.sampler.temp = i % 2 ? 0.0f : 0.8f;
    return p;
  };
  for_each_isa([&](const std::string& isa) {
    const auto pool = std::make_shared<ThreadPool>(2);
    const SessionParams sp{.n_ctx = 64, .n_batch = 4, .pool = pool};
    std::vector<std::unique_ptr<Session>> sessions;
    std::vector<std::unique_ptr<Generation>> gens;
    int mixed_steps = 0;
    for (int step = 0;; ++step) {
      for (size_t i = 0; i < prompts.size(); ++i)
        if (admitted_at[i] == step) {
          sessions.push_back(std::make_unique<Session>(model, sp));
          gens.push_back(std::make_unique<Generation>(*sessions.back(), prompts[i], params(i)));
        }
      std::vector<Generation*> live;
      for (auto& g : gens)
        if (!g->done()) {
          if (g->prefill_left() == 0 && !g->pending()) g->next();
          live.push_back(g.get());
        }
      if (live.empty() && gens.size() == prompts.size()) break;
      const auto any = [&](auto pred) { return std::any_of(live.begin(), live.end(), pred); };
      mixed_steps += any([](auto* g) { return g->pending().has_value(); }) &&
                     any([](auto* g) { return g->prefill_left() > 0; });
      step_batch(live);
    }
    EXPECT_GE(mixed_steps, 4) << isa; // prompts did enter while others decoded
    for (size_t i = 0; i < prompts.size(); ++i) {
      Session alone(model, sp);
      EXPECT_EQ(gens[i]->stats().generated_ids,
                generate(alone, prompts[i], params(i)).generated_ids)
          << isa << " sequence " << i;
      EXPECT_EQ(gens[i]->stats().n_gen, 12) << isa << " sequence " << i;
    }
  });
}

// A Generation stepped by hand, its prompt prefilled a chunk at a time, is generate():
// same tokens, same text, same stop.
TEST(Batch, GenerationStepsAreGenerate) {
  const auto model = Model::load(data_path("real-tiny/bitnet-tiny-brown.gguf"));
  GenerateParams p;
  p.n_predict = 24;
  p.sampler.seed = 7; // sampled, not greedy: the sampler's state is stepped the same way
  p.stop = {"the"};
  const std::string prompt = "The jury said it did find that the moment's musicians were";
  Session a(model, {.n_ctx = 128, .n_batch = 4, .n_threads = 1});
  std::string text_a;
  const Stats expected = generate(a, prompt, p, [&](int32_t, std::string_view t) {
    text_a += t;
    return true;
  });
  Session b(model, {.n_ctx = 128, .n_batch = 4, .n_threads = 1});
  Generation g(b, prompt, p);
  int chunks = 0;
  while (g.prefill_left() > 0) {
    g.prefill(1);
    ++chunks;
  }
  EXPECT_EQ(chunks, (static_cast<int>(expected.prompt_ids.size()) + 3) / 4);
  std::string text_b;
  while (!g.done()) {
    text_b += g.next().text;
    g.forward();
  }
  EXPECT_EQ(g.stats().generated_ids, expected.generated_ids);
  EXPECT_EQ(g.stats().stop_reason, expected.stop_reason);
  EXPECT_EQ(text_b, text_a);
  EXPECT_EQ(b.tokens().size(), a.tokens().size());
}

// Prompts prefilled together (prefill_batch: one forward over a micro-batch of each; runs of
// several rows of one sequence attend as that micro-batch alone) leave each session as its
// prompt forwarded alone: every logit after the prompt, then the greedy tokens after it.
// With n_batch 8 the 11-token prompt takes two micro-batches, and the second forward's
// group holds two sequences of several rows each.
TEST(Batch, PromptsPrefilledTogetherArePrefilledAlone) {
  const auto model = Model::load(data_path("real-tiny/bitnet-tiny-brown.gguf"));
  const std::vector<int32_t> text = model->tokenizer().tokenize(
      "It was a long time before the house was quiet again, and Mr. and Mrs. Dursley of number "
      "four said the jury",
      true);
  ASSERT_GE(text.size(), 21u);
  const auto slice = [&](size_t at, size_t n) {
    return std::vector<int32_t>(text.begin() + static_cast<std::ptrdiff_t>(at),
                                text.begin() + static_cast<std::ptrdiff_t>(at + n));
  };
  const std::vector<std::vector<int32_t>> prompts = {slice(0, 11), slice(11, 3), slice(14, 5),
                                                     slice(19, 2)};
  const std::vector<int32_t> n_ctx = {64, 96, 32, 64};
  for_each_isa([&](const std::string& isa) {
    for (KvType kv : {KvType::f16, KvType::f32})
      for (int32_t n_batch : {8, 2048}) {
        const auto pool = std::make_shared<ThreadPool>(2);
        const auto params = [&](size_t i) {
          return SessionParams{.n_ctx = n_ctx[i], .n_batch = n_batch, .kv_type = kv, .pool = pool};
        };
        std::vector<std::unique_ptr<Session>> sessions;
        std::vector<std::unique_ptr<Generation>> gens;
        std::vector<Generation*> all;
        for (size_t i = 0; i < prompts.size(); ++i) {
          sessions.push_back(std::make_unique<Session>(model, params(i)));
          gens.push_back(std::make_unique<Generation>(*sessions.back(), prompts[i], greedy(5)));
          all.push_back(gens.back().get());
        }
        int forwards = 0;
        for (; std::any_of(all.begin(), all.end(), [](auto* g) { return g->prefill_left() > 0; });
             ++forwards)
          prefill_batch(all);
        const std::string where =
            fmt::format("isa={} kv={} n_batch={}", isa, kv == KvType::f16 ? "f16" : "f32", n_batch);
        EXPECT_EQ(forwards, n_batch == 8 ? 2 : 1) << where;
        for (size_t i = 0; i < prompts.size(); ++i) {
          Session alone(model, params(i));
          alone.evaluate(prompts[i]);
          EXPECT_EQ(
              std::vector<int32_t>(sessions[i]->tokens().begin(), sessions[i]->tokens().end()),
              prompts[i])
              << where << " sequence " << i;
          ASSERT_EQ(std::vector<float>(sessions[i]->logits().begin(), sessions[i]->logits().end()),
                    std::vector<float>(alone.logits().begin(), alone.logits().end()))
              << where << " sequence " << i;
        }
        const std::vector<Stats> together = generate_together(gens);
        for (size_t i = 0; i < prompts.size(); ++i) {
          Session alone(model, params(i));
          EXPECT_EQ(together[i].generated_ids, generate(alone, prompts[i], greedy(5)).generated_ids)
              << where << " sequence " << i;
        }
      }
  });
}

// prepare_next() computes the head step of exactly the generations ready for one: prompt
// forwarded, screened, none pending or prepared; their tokens stay generate()'s.
TEST(Batch, PrepareNextHeadsTheReadyGenerations) {
  const auto model = Model::load(data_path("real-tiny/bitnet-tiny-brown.gguf"));
  const auto pool = std::make_shared<ThreadPool>(2);
  const std::vector<std::string> prompts = {"The jury said", "He was a man of", "It", "She"};
  const auto params = [](size_t i) {
    GenerateParams p = greedy(6);
    p.head = i == 2 ? HeadMode::exact : HeadMode::screened;
    return p;
  };
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<std::unique_ptr<Generation>> gens;
  std::vector<Generation*> all;
  for (size_t i = 0; i < prompts.size(); ++i) {
    sessions.push_back(std::make_unique<Session>(model, SessionParams{.n_ctx = 64, .pool = pool}));
    gens.push_back(std::make_unique<Generation>(*sessions.back(), prompts[i], params(i)));
    all.push_back(gens.back().get());
  }
  for (size_t i = 0; i < 3; ++i) // the last prompt is not forwarded yet
    gens[i]->prefill();
  Session other(model, {.n_ctx = 64, .n_threads = 1});
  Generation foreign(other, "The", greedy(2));
  foreign.prefill();
  std::vector<Generation*> mixed = all;
  mixed.push_back(&foreign);
  EXPECT_EQ(error_kind([&] { prepare_next(mixed); }), ErrorKind::invalid_argument);
  EXPECT_EQ(prepare_next(all), 2u); // not the exact head's, not the unforwarded prompt's
  EXPECT_EQ(prepare_next(all), 0u); // already prepared
  gens[3]->prefill();
  EXPECT_EQ(prepare_next(all), 1u);
  for (Generation* g : all)
    g->next();
  EXPECT_EQ(prepare_next(all), 0u); // tokens pending
  for (;;) {
    std::vector<Generation*> step;
    for (Generation* g : all)
      if (!g->done()) step.push_back(g);
    if (step.empty()) break;
    decode_batch(step);
    for (Generation* g : step)
      if (!g->done()) g->next();
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    Session alone(model, {.n_ctx = 64, .pool = pool});
    EXPECT_EQ(gens[i]->stats().generated_ids, generate(alone, prompts[i], params(i)).generated_ids)
        << "sequence " << i;
  }
}

TEST(Batch, CancelEndsAfterThePendingToken) {
  const auto model = Model::load(data_path("real-tiny/bitnet-tiny-brown.gguf"));
  Session s(model, {.n_ctx = 64, .n_threads = 1});
  Generation g(s, "The jury", greedy(10));
  g.prefill();
  g.next();
  EXPECT_EQ(error_kind([&] { g.next(); }), ErrorKind::invalid_argument); // not forwarded
  g.cancel();
  EXPECT_FALSE(g.done());
  g.forward();
  EXPECT_TRUE(g.done());
  EXPECT_EQ(g.stats().stop_reason, StopReason::callback);
  EXPECT_EQ(g.stats().n_gen, 1);
  EXPECT_EQ(s.n_past(), static_cast<int32_t>(g.stats().prompt_ids.size()) + 1);
  EXPECT_EQ(error_kind([&] { g.next(); }), ErrorKind::invalid_argument);
}

// A rejected batch changes no session.
TEST(Batch, RejectedBatchesChangeNothing) {
  const auto model = Model::load(data_path("real-tiny/bitnet-tiny-brown.gguf"));
  const auto pool = std::make_shared<ThreadPool>(1);
  Session a(model, {.n_ctx = 8, .pool = pool});
  Session b(model, {.n_ctx = 8, .pool = pool});
  Session own(model, {.n_ctx = 8, .n_threads = 1});
  Session narrow(model, {.n_ctx = 8, .n_batch = 1, .pool = pool});
  a.evaluate(std::vector<int32_t>{1, 2, 3});
  b.evaluate(std::vector<int32_t>(8, 5)); // full
  const auto n_vocab = static_cast<int32_t>(model->info().n_vocab);
  const auto kind = [](std::vector<Session*> sessions, std::vector<int32_t> ids) {
    return error_kind([&] { decode_batch(sessions, ids); });
  };
  EXPECT_EQ(kind({&a, &b}, {4, 4}), ErrorKind::context_overflow);
  EXPECT_EQ(kind({&a, &own}, {4, 4}), ErrorKind::invalid_argument);    // another pool
  EXPECT_EQ(kind({&a, &a}, {4, 4}), ErrorKind::invalid_argument);      // twice
  EXPECT_EQ(kind({&a, &narrow}, {4, 4}), ErrorKind::invalid_argument); // n_batch 1
  EXPECT_EQ(kind({&a}, {4, 4}), ErrorKind::invalid_argument);
  EXPECT_EQ(kind({}, {}), ErrorKind::invalid_argument);
  EXPECT_EQ(kind({&a, &narrow}, {4, n_vocab}), ErrorKind::invalid_argument);
  Session c(model, {.n_ctx = 8, .pool = pool});
  c.evaluate(std::vector<int32_t>{7});
  EXPECT_EQ(kind({&a, &c}, {4, n_vocab}), ErrorKind::invalid_input);
  EXPECT_EQ(kind({&a, &c}, {-1, 4}), ErrorKind::invalid_input);
  EXPECT_EQ(a.n_past(), 3);
  EXPECT_EQ(b.n_past(), 8);
  EXPECT_EQ(c.n_past(), 1);
  // and the sessions still decode as before
  const std::vector<float> before(a.logits().begin(), a.logits().end());
  Session fresh(model, {.n_ctx = 8, .n_threads = 1});
  fresh.evaluate(std::vector<int32_t>{1, 2, 3});
  EXPECT_EQ(before, std::vector<float>(fresh.logits().begin(), fresh.logits().end()));
}

} // namespace
} // namespace bitnet::test
