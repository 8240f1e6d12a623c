// Placeholder until the command lands: it says so and fails.
#include "bitnet/error.hpp"
#include "commands.hpp"

namespace bitnet::cli {

CommandFn add_perplexity(CLI::App& root) {
  root.add_subcommand("perplexity", "(not implemented yet)");
  return [] () -> int { throw Error(ErrorKind::unsupported, "'perplexity' is not implemented yet"); };
}

} // namespace bitnet::cli
