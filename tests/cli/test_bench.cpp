// `bitnet bench`: llama-bench's tests and field names in json, md and csv.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bitnet/model.hpp"
#include "support/cli_runner.hpp"
#include "support/json.hpp"

namespace {

using bitnet::test::CliResult;
using bitnet::test::Json;
using bitnet::test::run_cli;
using bitnet::test::tiny_model;

// The I2_S matmul MACs per token from the config: q and o are n_embd × n_embd, k and v
// n_embd_kv × n_embd, gate and up n_ff × n_embd, down n_embd × n_ff, in every layer.
int64_t expected_macs_per_token(const std::string& path) {
  const auto model = bitnet::Model::load(path);
  const bitnet::ModelInfo& info = model->info();
  const int64_t embd = info.n_embd;
  const int64_t embd_kv = int64_t{info.n_head_kv} * info.head_dim;
  return info.n_layer * (2 * embd * embd + 2 * embd_kv * embd + 3 * int64_t{info.n_ff} * embd);
}

TEST(CliBench, JsonHasLlamaBenchFieldsPerTest) {
  const CliResult r = run_cli({"bench", "-m", tiny_model(), "-p", "16", "-n", "4", "-r", "3", "-t",
                               "1,2", "-o", "json", "--bw", "10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json rows = Json::parse(r.out);
  ASSERT_EQ(rows.size(), 4u); // (pp16, tg4) × threads 1, 2
  const int64_t macs_per_token = expected_macs_per_token(tiny_model());
  const std::vector<std::pair<int64_t, int64_t>> tests = {{16, 0}, {0, 4}, {16, 0}, {0, 4}};
  for (size_t i = 0; i < rows.size(); ++i) {
    const Json& row = rows[i];
    for (const char* key :
         {"build_commit", "cpu_info", "isa", "model_filename", "model_type", "test_time", "type_k"})
      EXPECT_TRUE(row.at(key).is_string()) << key;
    EXPECT_EQ(row.at("model_filename").get<std::string>(), tiny_model());
    EXPECT_EQ(row.at("model_size").get<int64_t>(), 2720128);
    EXPECT_EQ(row.at("model_n_params").get<int64_t>(), 5423616);
    EXPECT_EQ(row.at("n_threads").get<int64_t>(), i < 2 ? 1 : 2);
    EXPECT_EQ(row.at("n_prompt").get<int64_t>(), tests[i].first);
    EXPECT_EQ(row.at("n_gen").get<int64_t>(), tests[i].second);
    const Json& ts = row.at("samples_ts");
    const Json& ns = row.at("samples_ns");
    ASSERT_EQ(ts.size(), 3u);
    ASSERT_EQ(ns.size(), 3u);
    double sum = 0;
    for (size_t k = 0; k < ts.size(); ++k) {
      EXPECT_GT(ts[k].get<double>(), 0.0);
      // t/s of a sample is its token count over its time.
      const double n = double(tests[i].first + tests[i].second);
      EXPECT_NEAR(ts[k].get<double>(), n * 1e9 / ns[k].get<double>(), 1e-3 * ts[k].get<double>());
      sum += ts[k].get<double>();
    }
    EXPECT_NEAR(row.at("avg_ts").get<double>(), sum / 3, 1e-9 * sum);
    EXPECT_GE(row.at("stddev_ts").get<double>(), 0.0);
    if (tests[i].second > 0) {
      EXPECT_EQ(row.at("bandwidth_gbps").get<double>(), 10.0);
      // Bytes per token cover at least the weights; the share is bytes·t/s over bandwidth.
      EXPECT_GT(row.at("bytes_per_token").get<double>(), 1e6);
      EXPECT_NEAR(row.at("bw_share").get<double>(),
                  row.at("bytes_per_token").get<double>() * row.at("avg_ts").get<double>() / 10e9,
                  1e-9);
      for (const char* key : {"macs_per_token", "mac_peak_gmacs", "peak_share"})
        EXPECT_TRUE(row.at(key).is_null()) << key;
    } else {
      EXPECT_TRUE(row.at("bw_share").is_null());
      // pp: the I2_S MACs per token against the int8 MAC peak probed in this run.
      EXPECT_EQ(row.at("macs_per_token").get<int64_t>(), macs_per_token);
      const double peak = row.at("mac_peak_gmacs").get<double>();
      EXPECT_GT(peak, 0.0);
      const double share = row.at("peak_share").get<double>();
      EXPECT_NEAR(share, double(macs_per_token) * row.at("avg_ts").get<double>() / 1e9 / peak,
                  1e-9 * share);
      EXPECT_GT(100.0 * share, 0.0);
      EXPECT_LT(100.0 * share, 1000.0);
    }
  }
}

TEST(CliBench, MarkdownAndCsvShapes) {
  CliResult r = run_cli({"bench", "-m", tiny_model(), "-p", "8", "-n", "0", "-r", "1", "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| model"), std::string::npos);
  EXPECT_NE(r.out.find("t/s"), std::string::npos);
  EXPECT_NE(r.out.find("% peak |"), std::string::npos);
  EXPECT_NE(r.out.find("pp8"), std::string::npos);
  EXPECT_NE(r.out.find("int8 MAC peak ("), std::string::npos);
  EXPECT_NE(r.out.find("MAC per token (I2_S matmuls only)"), std::string::npos);
  EXPECT_EQ(r.out.find("tg"), std::string::npos); // -n 0 skips tg
  EXPECT_NE(r.out.find("build: "), std::string::npos);

  r = run_cli({"bench", "-m", tiny_model(), "-p", "0", "-n", "2", "-r", "2", "-t", "1", "-o", "csv",
               "--bw", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string header = r.out.substr(0, r.out.find('\n'));
  for (const char* field :
       {"build_commit", "cpu_info", "n_threads", "model_filename", "model_size", "model_n_params",
        "n_prompt", "n_gen", "avg_ts", "stddev_ts", "samples_ts", "isa", "bw_share",
        "macs_per_token", "mac_peak_gmacs", "peak_share"})
    EXPECT_NE(header.find(field), std::string::npos) << field;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2); // header + tg2
}

TEST(CliBench, ProbesBandwidthWhenNotGiven) {
  const CliResult r = run_cli(
      {"bench", "-m", tiny_model(), "-p", "0", "-n", "2", "-r", "1", "-t", "1", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json row = Json::parse(r.out).at(0);
  EXPECT_GT(row.at("bandwidth_gbps").get<double>(), 0.0);
  EXPECT_GT(row.at("bw_share").get<double>(), 0.0);
}

// -d N: each test runs with N tokens already in the context (llama-bench's --n-depth); the
// KV bytes a tg step reads grow with the depth (with the exact head, whose bytes are fixed).
TEST(CliBench, DepthRunsEachTestAfterThatManyTokens) {
  CliResult r = run_cli({"bench", "-m", tiny_model(), "-p", "4", "-n", "2", "-d", "0,100", "-r",
                         "1", "-t", "1", "-o", "json", "--bw", "10", "--head", "exact"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json rows = Json::parse(r.out);
  ASSERT_EQ(rows.size(), 4u); // (pp4, tg2) × depths 0, 100
  const int64_t depths[] = {0, 0, 100, 100};
  for (size_t i = 0; i < rows.size(); ++i)
    EXPECT_EQ(rows[i].at("n_depth").get<int64_t>(), depths[i]);
  // A tg step at depth d reads d more positions of K and V in every layer (F16: 2 bytes each).
  const auto model = bitnet::Model::load(tiny_model());
  const bitnet::ModelInfo& info = model->info();
  const double kv_per_pos = 2.0 * info.n_layer * info.n_head_kv * info.head_dim * 2.0;
  EXPECT_NEAR(rows[3].at("bytes_per_token").get<double>() -
                  rows[1].at("bytes_per_token").get<double>(),
              100 * kv_per_pos, 1e-6 * kv_per_pos);

  r = run_cli({"bench", "-m", tiny_model(), "-p", "4", "-n", "2", "--depth", "16", "-r", "1", "-t",
               "1", "--bw", "10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("pp4 @ d16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tg2 @ d16"), std::string::npos) << r.out;

  // The depth plus the test must fit the model's context (256 for the demo model).
  r = run_cli({"bench", "-m", tiny_model(), "-p", "8", "-n", "0", "-d", "250", "-r", "1"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("bitnet: error: -d 250 with -p 8 needs a context of 258"), std::string::npos)
      << r.err;
}

// --interleave: every test is set up first (its depth filled, its warm-up run), then the timed
// runs go in turns, one of each test per round; the rows are those of the sequential order.
TEST(CliBench, InterleaveTakesTheTestsRunsInTurns) {
  const std::vector<std::string> args = {"bench", "-m", tiny_model(), "-p",   "4",  "-n",
                                         "2",     "-d", "0,16",       "-r",   "3",  "-t",
                                         "1",     "-o", "json",       "--bw", "10", "-v"};
  const CliResult plain = run_cli(args);
  std::vector<std::string> turns = args;
  turns.push_back("--interleave");
  const CliResult r = run_cli(turns);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json a = Json::parse(plain.out), b = Json::parse(r.out);
  ASSERT_EQ(b.size(), 4u);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(b[i].at("n_prompt"), a[i].at("n_prompt"));
    EXPECT_EQ(b[i].at("n_gen"), a[i].at("n_gen"));
    EXPECT_EQ(b[i].at("n_depth"), a[i].at("n_depth"));
    EXPECT_EQ(b[i].at("samples_ns").size(), 3u);
    EXPECT_EQ(b[i].at("bytes_per_token"), a[i].at("bytes_per_token"));
  }
  // The debug log's order of sessions and timed runs.
  const auto order = [](const std::string& err) {
    std::vector<std::string> events;
    for (size_t at = err.find("bench: "); at != std::string::npos; at = err.find("bench: ", at + 1))
      events.push_back(err.substr(at + 7, err.find('\n', at) - at - 7));
    return events;
  };
  const std::vector<std::string> tests = {"pp4", "tg2", "pp4 @ d16", "tg2 @ d16"};
  std::vector<std::string> want_plain, want_turns;
  for (const std::string& t : tests) {
    want_plain.push_back("1 threads, " + t);
    want_turns.push_back("1 threads, " + t);
    for (int i = 1; i <= 3; ++i)
      want_plain.push_back("run " + std::to_string(i) + " of " + t);
  }
  for (int i = 1; i <= 3; ++i)
    for (const std::string& t : tests)
      want_turns.push_back("run " + std::to_string(i) + " of " + t);
  EXPECT_EQ(order(plain.err), want_plain) << plain.err;
  EXPECT_EQ(order(r.err), want_turns) << r.err;
}

// --head screened,exact: a tg row per head; the screened one reads the screen and the rows it
// recomputes (fewer bytes than the whole head), pp rows use the whole head.
TEST(CliBench, HeadColumnMeasuresBothModes) {
  CliResult r = run_cli({"bench", "-m", tiny_model(), "-p", "4", "-n", "8", "-r", "1", "-t", "1",
                         "-o", "json", "--bw", "10", "--head", "screened,exact"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json rows = Json::parse(r.out);
  ASSERT_EQ(rows.size(), 3u); // pp4, tg8 screened, tg8 exact
  EXPECT_EQ(rows[0].at("head").get<std::string>(), "exact");
  EXPECT_EQ(rows[1].at("head").get<std::string>(), "screened");
  EXPECT_EQ(rows[2].at("head").get<std::string>(), "exact");
  const auto model = bitnet::Model::load(tiny_model());
  const double n_vocab = model->info().n_vocab;
  EXPECT_LT(rows[1].at("head_rows_per_step").get<double>(), n_vocab / 16);
  EXPECT_EQ(rows[2].at("head_rows_per_step").get<double>(), n_vocab);
  EXPECT_LT(rows[1].at("bytes_per_token").get<double>(),
            rows[2].at("bytes_per_token").get<double>());

  r = run_cli({"bench", "-m", tiny_model(), "-p", "0", "-n", "4", "-r", "1", "-t", "1", "--bw",
               "10", "--head", "exact,screened"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| exact    |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| screened |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rows recomputed exactly per step"), std::string::npos) << r.out;
}

TEST(CliBench, BadArgumentsFail) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"bench", "-m", tiny_model(), "-o", "xml"},
        std::vector<std::string>{"bench", "-m", tiny_model(), "-p", "0", "-n", "0"},
        std::vector<std::string>{"bench", "-m", tiny_model(), "-t", "0"},
        std::vector<std::string>{"bench", "-m", tiny_model(), "-r", "0"},
        std::vector<std::string>{"bench", "-m", tiny_model(), "--head", "fast"}}) {
    const CliResult r = run_cli(args);
    EXPECT_EQ(r.signal, 0);
    EXPECT_EQ(r.exit_code, 2) << r.err;
  }
}

} // namespace
