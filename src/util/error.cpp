#include "bitnet/error.hpp"

namespace bitnet {

int exit_code(ErrorKind kind) noexcept {
  switch (kind) {
  case ErrorKind::invalid_argument: return 2;
  case ErrorKind::io: return 3;
  case ErrorKind::format: return 4;
  case ErrorKind::unsupported: return 5;
  case ErrorKind::context_overflow: return 6;
  case ErrorKind::invalid_input: return 7;
  }
  return 1;
}

const char* to_string(ErrorKind kind) noexcept {
  switch (kind) {
  case ErrorKind::invalid_argument: return "invalid argument";
  case ErrorKind::io: return "i/o error";
  case ErrorKind::format: return "format error";
  case ErrorKind::unsupported: return "unsupported";
  case ErrorKind::context_overflow: return "context overflow";
  case ErrorKind::invalid_input: return "invalid input";
  }
  return "error";
}

} // namespace bitnet
