// Placeholder until the command lands: it says so and fails.
#include "bitnet/error.hpp"
#include "commands.hpp"

namespace bitnet::cli {

CommandFn add_run(CLI::App& root) {
  root.add_subcommand("run", "(not implemented yet)");
  return []() -> int { throw Error(ErrorKind::unsupported, "'run' is not implemented yet"); };
}

CommandFn add_chat(CLI::App& root) {
  root.add_subcommand("chat", "(not implemented yet)");
  return []() -> int { throw Error(ErrorKind::unsupported, "'chat' is not implemented yet"); };
}

} // namespace bitnet::cli
