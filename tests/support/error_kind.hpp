// The ErrorKind of the bitnet::Error that f() throws; a test failure if it throws none.
#pragma once

#include <gtest/gtest.h>

#include "bitnet/error.hpp"

namespace bitnet::test {

template <typename F> ErrorKind error_kind(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no bitnet::Error thrown";
  return ErrorKind::io;
}

} // namespace bitnet::test
