#include "tokenizer_data.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include "synth/synth.hpp"

namespace bitnet::test {

namespace {

std::filesystem::path scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto path = std::filesystem::temp_directory_path() /
                ("bitnet-test-tokenizer-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    return path;
  }();
  return dir;
}

class ScratchCleanup : public ::testing::Environment {
public:
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(scratch_dir(), ec);
  }
};

const auto* const cleanup = ::testing::AddGlobalTestEnvironment(new ScratchCleanup);

} // namespace

std::string data_path(const std::string& relative) {
  return std::string(BITNET_TEST_DATA_DIR) + "/" + relative;
}

const gguf::File& llama3_gguf(const std::string& pre) {
  static std::map<std::string, std::unique_ptr<gguf::File>> files;
  auto& file = files[pre];
  if (!file) {
    static const synth::Vocab vocab =
        synth::load_hf_tokenizer(data_path("tokenizer/tokenizer.json"));
    synth::Options options;
    options.tokenizer_json = data_path("tokenizer/tokenizer.json");
    if (!pre.empty()) options.pre = pre;
    gguf::Writer writer;
    for (auto& kv : synth::metadata(options, synth::preset_shape("2b4t"), vocab)) {
      writer.add_kv(std::move(kv.key), std::move(kv.value));
    }
    const std::string path =
        (scratch_dir() / ("llama3-" + (pre.empty() ? "nopre" : pre) + ".gguf")).string();
    writer.write(path, [](std::size_t, const gguf::TensorInfo&, gguf::Writer::Sink&) {});
    file = std::make_unique<gguf::File>(gguf::File::open(path));
  }
  return *file;
}

std::vector<Json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<Json> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(Json::parse(line));
  }
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace bitnet::test
