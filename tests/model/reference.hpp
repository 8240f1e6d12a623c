// Reference fixtures (tests/data/reference/*.json, real-tiny/reference.json, schema
// bitnet-ref-greedy-v1) and the parity check shared by the model and runtime tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "util/json.hpp"

namespace bitnet::test {

inline std::string data_path(const std::string& rel) {
  return std::string(BITNET_TEST_DATA_DIR) + "/" + rel;
}

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

inline std::vector<int32_t> ids_of(const json::Value& v) {
  std::vector<int32_t> out;
  for (const json::Value& x : v.as_array())
    out.push_back(static_cast<int32_t>(x.as_int()));
  return out;
}

// `rel` is relative to tests/data; the model file is resolved next to the JSON, unless
// `model_rel` (relative to tests/data) is given.
inline RefFile load_reference(const std::string& rel, const std::string& model_rel = "") {
  std::ifstream in(data_path(rel), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const json::Value root = json::parse(ss.str());
  RefFile f;
  const std::string dir = rel.substr(0, rel.find_last_of('/'));
  f.model_path = model_rel.empty() ? data_path(dir + "/" + root.at("model").at("file").as_string())
                                   : data_path(model_rel);
  for (const json::Value& r : root.at("runs").as_array()) {
    RefRun run;
    run.name = r.at("prompt_name").as_string();
    run.prompt = r.at("prompt").as_string();
    run.prompt_ids = ids_of(r.at("prompt_ids"));
    run.gen_ids = ids_of(r.at("gen_ids"));
    for (const json::Value& step : r.at("top8_first8").as_array()) {
      std::vector<std::pair<int32_t, double>> top;
      for (const json::Value& e : step.as_array())
        top.emplace_back(static_cast<int32_t>(e.as_array()[0].as_int()),
                         e.as_array()[1].as_double());
      run.top8.push_back(std::move(top));
    }
    run.n_ctx = static_cast<int32_t>(r.at("n_ctx").as_int());
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
