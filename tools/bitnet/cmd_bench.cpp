// Placeholder until the command lands: it says so and fails.
#include "bitnet/error.hpp"
#include "commands.hpp"

namespace bitnet::cli {

CommandFn add_bench(CLI::App& root) {
  root.add_subcommand("bench", "(not implemented yet)");
  return [] () -> int { throw Error(ErrorKind::unsupported, "'bench' is not implemented yet"); };
}

} // namespace bitnet::cli
