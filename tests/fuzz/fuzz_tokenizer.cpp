// libFuzzer target for the tokenizer: arbitrary bytes as text with both pre-tokenizers,
// with and without special-token parsing. Invalid UTF-8 must be rejected with
// Error(invalid_input); valid text must decode back to itself, also through StreamDecoder.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/error.hpp"
#include "gguf/gguf.hpp"
#include "tokenizer/tokenizer.hpp"

namespace {

using bitnet::tokenizer::PreTokenizer;
using bitnet::tokenizer::Tokenizer;

// Model A's compact byte-level BPE vocabulary (Llama-3 tokens, 10 control tokens).
const Tokenizer& tokenizer(PreTokenizer pre) {
  static const auto file =
      bitnet::gguf::File::open(std::string(BITNET_TEST_DATA_DIR) + "/reference/models/A.gguf");
  static const Tokenizer llama3 = [] {
    bitnet::tokenizer::Options options;
    options.pretokenizer = PreTokenizer::llama3;
    return Tokenizer::from_gguf(file, options);
  }();
  static const Tokenizer fallback = [] {
    bitnet::tokenizer::Options options;
    options.pretokenizer = PreTokenizer::default_;
    return Tokenizer::from_gguf(file, options);
  }();
  return pre == PreTokenizer::llama3 ? llama3 : fallback;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const Tokenizer& tok = tokenizer(mode & 1 ? PreTokenizer::default_ : PreTokenizer::llama3);
  const bool parse_special = (mode & 2) != 0;
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text, (mode & 4) != 0, parse_special);
  } catch (const bitnet::Error& e) {
    if (e.kind() != bitnet::ErrorKind::invalid_input) std::abort();
    return 0;
  }
  const std::size_t skip = (mode & 4) != 0 ? 1 : 0;
  if (tok.decode(std::span<const int32_t>(ids).subspan(skip)) != text) std::abort();
  bitnet::tokenizer::StreamDecoder stream(tok, true);
  std::string streamed;
  for (std::size_t i = skip; i < ids.size(); ++i)
    streamed += stream.push(ids[i]);
  streamed += stream.flush();
  if (streamed != text) std::abort();
  return 0;
}
