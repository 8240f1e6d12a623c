// `bitnet info` and `bitnet quantize` end to end: outputs, and for bad input one line on
// stderr with the exit code of the error kind (src/util/error.cpp).

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gguf/gguf.hpp"
#include "support/cli_runner.hpp"
#include "support/json.hpp"

namespace bitnet::gguf {
namespace {

using test::CliResult;
using test::Json;
using test::run_cli;
using test::slurp;
using test::TempDir;

const std::string kModels = std::string(BITNET_TEST_DATA_DIR) + "/reference/models/";

void expect_one_error_line(const CliResult& r, int exit_code, std::string_view fragment) {
  EXPECT_EQ(r.exit_code, exit_code) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(r.err.rfind("bitnet: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
}

TEST(InfoCli, TextView) {
  TempDir dir;
  const CliResult r = run_cli({"info", "--model", kModels + "A.gguf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"architecture:  bitnet-b1.58", "runnable:      yes", "n_embd          512",
                        "n_head_kv       1", "vocab size      678", "bos             668",
                        "eot             677", "chat template   absent", "blk.2.ffn_down.weight",
                        "I2_S", "[1408, 512]", "tokenizer.ggml.tokens"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  }
}

TEST(InfoCli, JsonView) {
  TempDir dir;
  const CliResult r = run_cli({"info", "--json", "--model", kModels + "B.gguf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json v = Json::parse(r.out);
  const File f = File::open(kModels + "B.gguf");
  EXPECT_EQ(v.at("architecture").get<std::string>(), "bitnet-25");
  EXPECT_EQ(v.at("file_size").get<int64_t>(), static_cast<int64_t>(f.file_size()));
  EXPECT_TRUE(v.at("runnable").get<bool>());
  const Json& md = v.at("metadata");
  EXPECT_EQ(md.size(), f.metadata().size());
  EXPECT_EQ(md.at("bitnet-25.embedding_length").get<int64_t>(), 256);
  EXPECT_EQ(md.at("tokenizer.ggml.tokens").at("type").get<std::string>(), "string");
  EXPECT_EQ(md.at("tokenizer.ggml.tokens").at("count").get<int64_t>(), 678);
  EXPECT_FALSE(md.contains("tokenizer.ggml.pre")); // model B has no pre key
  EXPECT_TRUE(v.at("tokenizer").at("pre").is_null());
  const Json& tensors = v.at("tensors");
  ASSERT_EQ(tensors.size(), f.tensors().size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = f.tensors()[i];
    EXPECT_EQ(tensors[i].at("name").get<std::string>(), t.name);
    EXPECT_EQ(tensors[i].at("type").get<std::string>(), type_name(t.type));
    EXPECT_EQ(tensors[i].at("bytes").get<int64_t>(), static_cast<int64_t>(t.nbytes));
    ASSERT_EQ(tensors[i].at("shape").size(), t.ne.size());
    EXPECT_EQ(tensors[i].at("shape")[0].get<int64_t>(), static_cast<int64_t>(t.ne[0]));
  }
  EXPECT_EQ(f.find_tensor("token_embd.weight")->type, TensorType::Q8_0);
  EXPECT_GT(v.at("bytes_by_type").at("Q8_0").get<int64_t>(), 0);
}

TEST(InfoCli, UnrunnableFileIsDescribedWithTheReason) {
  TempDir dir;
  Writer w;
  w.add_kv("general.architecture", Value::string("gpt2"));
  w.add_tensor("token_embd.weight", TensorType::F32, {8, 4});
  w.write(dir.file("gpt2.gguf"), [](std::size_t, const TensorInfo& t, Writer::Sink& sink) {
    const std::vector<uint8_t> zeros(t.nbytes);
    sink.write(zeros);
  });
  const CliResult r = run_cli({"info", "--json", "--model", dir.file("gpt2.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json v = Json::parse(r.out);
  EXPECT_FALSE(v.at("runnable").get<bool>());
  EXPECT_NE(v.at("not_runnable_reason").get<std::string>().find("gpt2"), std::string::npos);
}

TEST(InfoCli, MissingAndCorruptFiles) {
  TempDir dir;
  expect_one_error_line(run_cli({"info", "--model", dir.file("nope.gguf")}), 3, "nope.gguf");

  const std::string model = slurp(kModels + "A.gguf");
  std::ofstream(dir.file("cut.gguf"), std::ios::binary) << model.substr(0, 5000);
  expect_one_error_line(run_cli({"info", "--model", dir.file("cut.gguf")}), 4, "cut.gguf");

  std::string bad = model;
  bad[0] = 'X';
  std::ofstream(dir.file("magic.gguf"), std::ios::binary) << bad;
  expect_one_error_line(run_cli({"info", "--model", dir.file("magic.gguf")}), 4, "magic");
}

TEST(QuantizeCli, ConvertsAndRefuses) {
  TempDir dir;
  const CliResult ok = run_cli({"quantize", kModels + "A-f16.gguf", dir.file("out.gguf")});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  // A.gguf is the same model packed with zero pads: identical bytes.
  EXPECT_TRUE(slurp(dir.file("out.gguf")) == slurp(kModels + "A.gguf"));

  expect_one_error_line(
      run_cli({"quantize", "--type", "q4_0", kModels + "A-f16.gguf", dir.file("x.gguf")}), 2,
      "q4_0");
  expect_one_error_line(run_cli({"quantize", dir.file("none.gguf"), dir.file("x.gguf")}), 3,
                        "none.gguf");
  expect_one_error_line(run_cli({"quantize", kModels + "A-f16.gguf", "/nonexistent-dir/x.gguf"}), 3,
                        "/nonexistent-dir/x.gguf");
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.gguf")));
}

TEST(QuantizeCli, NonTernaryNeedsTernarize) {
  TempDir dir;
  Writer w;
  w.add_kv("general.architecture", Value::string("bitnet-b1.58"));
  w.add_tensor("blk.0.ffn_up.weight", TensorType::F32, {128, 2});
  w.write(dir.file("in.gguf"), [](std::size_t, const TensorInfo& t, Writer::Sink& sink) {
    std::vector<float> v(t.n_elements());
    for (std::size_t i = 0; i < v.size(); ++i)
      v[i] = static_cast<float>(i % 7) - 3.0f;
    sink.write({reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4});
  });
  expect_one_error_line(run_cli({"quantize", dir.file("in.gguf"), dir.file("o.gguf")}), 7,
                        "--ternarize");
  const CliResult r = run_cli({"quantize", "--ternarize", dir.file("in.gguf"), dir.file("o.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(File::open(dir.file("o.gguf")).find_tensor("blk.0.ffn_up.weight")->type,
            TensorType::I2_S);
}

} // namespace
} // namespace bitnet::gguf
