// `bitnet info` as issue 13 (escaped keys and names) and issue 14 (positional FILE, the
// parameter count, the hint for an unquantized model) ask. Expected values come from the
// files themselves (a crafted GGUF, the fixtures' tensor lists), not from the CLI's code.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "gguf/gguf.hpp"
#include "support/cli_runner.hpp"
#include "support/json.hpp"

namespace bitnet::test {
namespace {

const std::string kModels = data_path("reference/models/");

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Bytes a terminal acts on: C0 controls but the newline, and DEL.
int control_bytes(const std::string& s) {
  return static_cast<int>(std::count_if(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && u != '\n') || u == 0x7F;
  }));
}

void write_zeros(const std::string& path, gguf::Writer& w) {
  w.write(path, [](std::size_t, const gguf::TensorInfo& t, gguf::Writer::Sink& sink) {
    sink.write(std::vector<uint8_t>(t.nbytes, 0));
  });
}

// Finding 9 of #13: a key, a tensor name and the architecture holding an OSC title sequence
// (ESC ] 0 ; ... BEL) and a clear-screen (ESC [ 2 J) reached the terminal raw.
TEST(InfoCli, ControlCharactersInKeysAndNamesAreEscaped) {
  TempDir dir;
  const std::string title = "\x1b]0;pwned\x07";
  const std::string clear = "\x1b[2J";
  const std::string key = "evil." + title + ".key" + clear;
  const std::string tensor = "blk.0." + clear + "weight" + title;
  gguf::Writer w;
  w.add_kv("general.architecture", gguf::Value::string("arch" + clear));
  w.add_kv(key, gguf::Value::u32(7));
  w.add_kv("tokenizer.ggml.model", gguf::Value::string("gpt2" + title));
  w.add_tensor(tensor, gguf::TensorType::F32, {4, 2});
  const std::string path = dir.file("evil.gguf");
  write_zeros(path, w);

  const CliResult text = run_cli({"info", path, "--log-level", "error"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(control_bytes(text.out), 0) << text.out;
  // Shown as escapes, so the user still sees what the file holds.
  EXPECT_TRUE(has(text.out, "evil.\\x1b]0;pwned\\x07.key\\x1b[2J")) << text.out;
  EXPECT_TRUE(has(text.out, "blk.0.\\x1b[2Jweight\\x1b]0;pwned\\x07")) << text.out;
  EXPECT_TRUE(has(text.out, "architecture:  arch\\x1b[2J")) << text.out;

  const CliResult json = run_cli({"info", path, "--json", "--log-level", "error"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(control_bytes(json.out), 0) << json.out;
  // JSON escapes them (\u001b), so the exact strings come back when parsed.
  const Json v = Json::parse(json.out);
  EXPECT_EQ(v.at("metadata").at(key).get<int>(), 7);
  EXPECT_EQ(v.at("tensors").at(0).at("name").get<std::string>(), tensor);
  EXPECT_EQ(v.at("architecture").get<std::string>(), "arch" + clear);
}

// Finding 7 of #14: `info FILE` as quantize takes files; -m still works; both is an error.
TEST(InfoCli, PositionalFileOrModelFlag) {
  const std::string m = tiny_model();
  const CliResult positional = run_cli({"info", m, "--json"});
  ASSERT_EQ(positional.exit_code, 0) << positional.err;
  const CliResult flag = run_cli({"info", "-m", m, "--json"});
  ASSERT_EQ(flag.exit_code, 0) << flag.err;
  EXPECT_EQ(positional.out, flag.out);
  EXPECT_EQ(Json::parse(positional.out).at("file").get<std::string>(), m);

  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"info", "-m", m, m}, std::vector<std::string>{"info"}}) {
    const CliResult r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("bitnet: error: ", 0), 0u) << r.err;
  }
}

// Elements of every tensor of `path`, from its tensor list.
uint64_t elements_of(const std::string& path) {
  const gguf::File f = gguf::File::open(path);
  uint64_t n = 0;
  for (const gguf::TensorInfo& t : f.tensors()) {
    uint64_t e = 1;
    for (const uint64_t d : t.ne)
      e *= d;
    n += e;
  }
  return n;
}

// Finding 7 of #14: info shows the parameter count as llama.cpp prints it ("5.42 M").
TEST(InfoCli, ParameterCount) {
  // The demo model: 5,423,616 parameters (tests/data/real-tiny/README.md says 5.4M).
  const uint64_t tiny = elements_of(tiny_model());
  EXPECT_EQ(tiny, 5423616u);
  CliResult r = run_cli({"info", tiny_model()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "params:        5.42 M (5423616)\n")) << r.out;
  r = run_cli({"info", tiny_model(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out).at("n_params").get<uint64_t>(), tiny);

  // Fixture A (its F16 source too: the same shapes), in millions with two decimals.
  for (const char* name : {"A.gguf", "A-f16.gguf"}) {
    const uint64_t n = elements_of(kModels + name);
    r = run_cli({"info", kModels + name, "--log-level", "error"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(has(r.out, fmt::format("params:        {:.2f} M ({})\n", n / 1e6, n)))
        << name << ": " << n << "\n"
        << r.out;
  }

  // Below a million: thousands (8 x 4 + 3 = 35 elements: "0.04 K").
  TempDir dir;
  gguf::Writer w;
  w.add_kv("general.architecture", gguf::Value::string("gpt2"));
  w.add_tensor("a", gguf::TensorType::F32, {8, 4});
  w.add_tensor("b", gguf::TensorType::F32, {3});
  write_zeros(dir.file("small.gguf"), w);
  r = run_cli({"info", dir.file("small.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "params:        0.04 K (35)\n")) << r.out;
}

// Finding 7 of #14: an F16 BitNet model (fixture A before llama-quantize) is refused as a
// file this build cannot run (exit 5), with a hint naming `bitnet quantize`.
TEST(InfoCli, UnquantizedModelGetsTheQuantizeHint) {
  const std::string f16 = kModels + "A-f16.gguf";
  const CliResult r = run_cli({"run", "-m", f16, "-p", "hi", "-n", "1", "--log-level", "error"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(r.err, "bitnet: error: tensor blk.0.attn_q.weight has type F16, expected I2_S (an "
                   "unquantized model: convert it with `bitnet quantize IN.gguf OUT.gguf`)\n");
  const CliResult info = run_cli({"info", f16, "--log-level", "error"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_TRUE(has(info.out, "runnable:      no: tensor blk.0.attn_q.weight has type F16"))
      << info.out;
  EXPECT_TRUE(has(info.out, "`bitnet quantize IN.gguf OUT.gguf`")) << info.out;
}

} // namespace
} // namespace bitnet::test
