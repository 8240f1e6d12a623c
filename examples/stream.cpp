// Loads a model and streams a greedy completion, through the public API only.
// Usage: bitnet_stream MODEL.gguf [PROMPT] [N_PREDICT]
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <bitnet/bitnet.hpp>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.gguf [PROMPT] [N_PREDICT]\n", argv[0]);
    return 2;
  }
  try {
    bitnet::log_to_stderr("warn"); // stdout holds only the completion
    const auto model = bitnet::Model::load(argv[1]);
    bitnet::Session session(model); // one sequence: its KV cache and threads
    bitnet::GenerateParams params;
    params.n_predict = argc > 3 ? std::atoi(argv[3]) : 32;
    params.sampler.temp = 0.0f; // greedy: the same tokens as bitnet.cpp
    bitnet::generate(session, argc > 2 ? argv[2] : "The", params,
                     [](int32_t /*id*/, std::string_view text) {
                       std::fwrite(text.data(), 1, text.size(), stdout);
                       std::fflush(stdout);
                       return true; // false would stop here
                     });
    std::putchar('\n');
  } catch (const bitnet::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
