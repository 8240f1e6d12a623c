// Placeholder until the command lands: it says so and fails.
#include "bitnet/error.hpp"
#include "commands.hpp"

namespace bitnet::cli {

CommandFn add_info(CLI::App& root) {
  root.add_subcommand("info", "(not implemented yet)");
  return [] () -> int { throw Error(ErrorKind::unsupported, "'info' is not implemented yet"); };
}

} // namespace bitnet::cli
