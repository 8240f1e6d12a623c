// Test inputs shared by the tokenizer tests: GGUF files holding the Llama-3 tokenizer of
// tests/data/tokenizer/tokenizer.json (written once per test run by the synth importer, with
// and without tokenizer.ggml.pre) and the JSON Lines fixtures.
#pragma once

#include <string>
#include <vector>

#include "gguf/gguf.hpp"
#include "support/json.hpp"

namespace bitnet::test {

std::string data_path(const std::string& relative); // under tests/data

// Llama-3 vocabulary GGUF; pre empty: no tokenizer.ggml.pre key (like the 2B-4T file).
const gguf::File& llama3_gguf(const std::string& pre);

std::vector<Json> read_jsonl(const std::string& path);
std::string read_text(const std::string& path);

} // namespace bitnet::test
