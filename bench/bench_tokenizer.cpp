// Tokenizer speed on the real Llama-3 vocabulary (issue 5 targets): loading it from a GGUF
// (< 150 ms), tokenizing 1 MB of English (< 0.5 s) and one 10,000-character word (< 50 ms);
// and importing it from tokenizer.json.
// The GGUF is written once from tests/data/tokenizer/tokenizer.json by the synth importer.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <benchmark/benchmark.h>
#include <unistd.h>

#include "gguf/gguf.hpp"
#include "synth/synth.hpp"
#include "tokenizer/tokenizer.hpp"

namespace {

using bitnet::tokenizer::PreTokenizer;
using bitnet::tokenizer::Tokenizer;

const std::string kDataDir = BITNET_DATA_DIR;

const std::string& llama3_gguf_path() {
  static const std::string path = [] {
    const std::string json = kDataDir + "/tokenizer/tokenizer.json";
    bitnet::synth::Options options;
    options.tokenizer_json = json;
    const auto shape = bitnet::synth::preset_shape("2b4t");
    bitnet::gguf::Writer writer;
    for (auto& kv :
         bitnet::synth::metadata(options, shape, bitnet::synth::load_hf_tokenizer(json))) {
      writer.add_kv(std::move(kv.key), std::move(kv.value));
    }
    const std::string out = (std::filesystem::temp_directory_path() /
                             ("bitnet-bench-tokenizer-" + std::to_string(::getpid()) + ".gguf"))
                                .string();
    writer.write(out,
                 [](std::size_t, const bitnet::gguf::TensorInfo&, bitnet::gguf::Writer::Sink&) {});
    return out;
  }();
  return path;
}

const bitnet::gguf::File& llama3_file() {
  static const bitnet::gguf::File file = bitnet::gguf::File::open(llama3_gguf_path());
  return file;
}

// 1 MB of English: the real-tiny validation text (Brown corpus) repeated.
const std::string& english_mb() {
  static const std::string text = [] {
    std::ifstream in(kDataDir + "/real-tiny/val.txt", std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    const std::string base = ss.str();
    std::string out;
    while (out.size() < (1u << 20))
      out += base;
    out.resize(1u << 20);
    while ((static_cast<unsigned char>(out.back()) & 0xC0) == 0x80 ||
           static_cast<unsigned char>(out.back()) >= 0xC0) {
      out.pop_back();
    }
    return out;
  }();
  return text;
}

// Importing the 9 MB Llama-3 tokenizer.json (what `bitnet synth --tokenizer` parses).
void BM_ImportTokenizerJson(benchmark::State& state) {
  const std::string json = kDataDir + "/tokenizer/tokenizer.json";
  for (auto _ : state)
    benchmark::DoNotOptimize(bitnet::synth::load_hf_tokenizer(json));
}

void BM_OpenGguf(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(bitnet::gguf::File::open(llama3_gguf_path()));
}

void BM_LoadVocab(benchmark::State& state) {
  const auto& file = llama3_file();
  for (auto _ : state)
    benchmark::DoNotOptimize(Tokenizer::from_gguf(file));
}

Tokenizer make(PreTokenizer pre) {
  bitnet::tokenizer::Options options;
  options.pretokenizer = pre;
  return Tokenizer::from_gguf(llama3_file(), options);
}

void BM_Encode1MBEnglish(benchmark::State& state, PreTokenizer pre) {
  const Tokenizer tok = make(pre);
  const std::string& text = english_mb();
  std::size_t n = 0;
  for (auto _ : state)
    n = tok.encode(text, true).size();
  state.counters["tokens"] = static_cast<double>(n);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void BM_EncodeLongWord(benchmark::State& state, PreTokenizer pre, const char* unit) {
  const Tokenizer tok = make(pre);
  std::string word;
  while (word.size() < 10000)
    word += unit;
  std::size_t n = 0;
  for (auto _ : state)
    n = tok.encode(word, false).size();
  state.counters["tokens"] = static_cast<double>(n);
}

BENCHMARK(BM_ImportTokenizerJson)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_OpenGguf)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoadVocab)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode1MBEnglish, llama3, PreTokenizer::llama3)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode1MBEnglish, default, PreTokenizer::default_)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EncodeLongWord, llama3_a, PreTokenizer::llama3, "a")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EncodeLongWord, llama3_xyz, PreTokenizer::llama3, "xyz")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EncodeLongWord, default_a, PreTokenizer::default_, "a")
    ->Unit(benchmark::kMillisecond);

} // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ec;
  std::filesystem::remove(llama3_gguf_path(), ec);
  return 0;
}
