// Reference fixtures (tests/data/reference/*.json, real-tiny/reference.json, schema
// bitnet-ref-greedy-v1) and the parity check shared by the model and runtime tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "support/json.hpp"

namespace bitnet::test {

inline std::string data_path(const std::string& rel) {
  return std::string(BITNET_TEST_DATA_DIR) + "/" + rel;
}

// A reference fixture's model, for tests parameterised over all of them.
struct FixtureModel {
  const char* json;
  const char* model; // relative to tests/data; "" = the JSON's model.file
  const char* name;  // the test's parameter name
};
inline void PrintTo(const FixtureModel& c, std::ostream* os) {
  *os << c.name;
}
inline constexpr FixtureModel kFixtureModels[] = {
    {"reference/A.json", "", "A"},
    {"reference/B.json", "", "B"},
    {"reference/C.json", "", "C"},
    {"reference/D.json", "", "D"},
    {"real-tiny/reference.json", "real-tiny/bitnet-tiny-brown.gguf", "real_tiny"},
};

struct RefRun {
  std::string name;
  std::string prompt;
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> gen_ids;
  std::vector<std::vector<std::pair<int32_t, double>>> top8; // first steps: (id, logit) × 8
  int32_t n_ctx = 0;
};

struct RefFile {
  std::string model_path; // absolute
  std::vector<RefRun> runs;
};

// `rel` is relative to tests/data; the model file is resolved next to the JSON, unless
// `model_rel` (relative to tests/data) is given.
inline RefFile load_reference(const std::string& rel, const std::string& model_rel = "") {
  const Json root = read_json(data_path(rel));
  RefFile f;
  const std::string dir = rel.substr(0, rel.find_last_of('/'));
  f.model_path = model_rel.empty()
                     ? data_path(dir + "/" + root.at("model").at("file").get<std::string>())
                     : data_path(model_rel);
  for (const Json& r : root.at("runs")) {
    RefRun run;
    run.name = r.at("prompt_name").get<std::string>();
    run.prompt = r.at("prompt").get<std::string>();
    run.prompt_ids = ids_of(r.at("prompt_ids"));
    run.gen_ids = ids_of(r.at("gen_ids"));
    for (const Json& step : r.at("top8_first8")) {
      std::vector<std::pair<int32_t, double>> top;
      for (const Json& e : step)
        top.emplace_back(e.at(0).get<int32_t>(), e.at(1).get<double>());
      run.top8.push_back(std::move(top));
    }
    run.n_ctx = r.at("n_ctx").get<int32_t>();
    f.runs.push_back(std::move(run));
  }
  return f;
}

// Parity: every generated id equals the reference's. Every fixture matches exactly, so
// there is no near-tie allowance (tests/data/reference/README.md suggests one for engines
// whose float order differs from bitnet.cpp's; this one reproduces it). A future fixture
// that needs one must list it per case, print it and count it.
inline void expect_same_ids(const std::vector<int32_t>& got, const RefRun& ref,
                            const std::string& what) {
  const auto diverge =
      std::mismatch(got.begin(), got.end(), ref.gen_ids.begin(), ref.gen_ids.end());
  EXPECT_EQ(got, ref.gen_ids) << what << ": first difference at step "
                              << (diverge.first - got.begin());
}

} // namespace bitnet::test
