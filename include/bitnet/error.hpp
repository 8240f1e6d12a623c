// The one error type the library throws. The CLI maps kind() to its exit code.
#pragma once

#include <stdexcept>
#include <string>

namespace bitnet {

enum class ErrorKind {
  io,               // file missing, unreadable, cannot be written
  format,           // corrupt or truncated GGUF, bad metadata value
  unsupported,      // valid file this build cannot run (arch, tensor type, layout)
  invalid_argument, // bad option value or API argument
  context_overflow, // prompt (+ n_predict) does not fit the context
  invalid_input,    // bad user data: invalid UTF-8, empty prompt, bad JSON
};

// Exit codes used by the CLI (documented in README.md).
int exit_code(ErrorKind kind) noexcept;
const char* to_string(ErrorKind kind) noexcept;

class Error : public std::runtime_error {
public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

private:
  ErrorKind kind_;
};

} // namespace bitnet
