// Placeholder until the command lands: it says so and fails.
#include "bitnet/error.hpp"
#include "commands.hpp"

namespace bitnet::cli {

CommandFn add_quantize(CLI::App& root) {
  root.add_subcommand("quantize", "(not implemented yet)");
  return [] () -> int { throw Error(ErrorKind::unsupported, "'quantize' is not implemented yet"); };
}

} // namespace bitnet::cli
