// Placeholder until the command lands: it says so and fails.
#include "bitnet/error.hpp"
#include "commands.hpp"

namespace bitnet::cli {

CommandFn add_synth(CLI::App& root) {
  root.add_subcommand("synth", "(not implemented yet)");
  return [] () -> int { throw Error(ErrorKind::unsupported, "'synth' is not implemented yet"); };
}

} // namespace bitnet::cli
