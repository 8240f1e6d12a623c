// Placeholder until the command lands: it says so and fails.
#include "bitnet/error.hpp"
#include "commands.hpp"

namespace bitnet::cli {

CommandFn add_tokenize(CLI::App& root) {
  root.add_subcommand("tokenize", "(not implemented yet)");
  return [] () -> int { throw Error(ErrorKind::unsupported, "'tokenize' is not implemented yet"); };
}

} // namespace bitnet::cli
