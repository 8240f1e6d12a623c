// The library's own door to the state behind its public classes. Each public class keeps
// its state in a private `impl_` and befriends Access; code under src/ (and programs linking
// bitnet::internal, such as the parity tests) reach it through impl_of(). Programs on the
// public API cannot include this header.
#pragma once

#include <utility>

namespace bitnet::detail {

struct Access {
  template <typename T> static auto& impl(T& object) { return *object.impl_; }
  template <typename T> static const auto& impl(const T& object) { return *object.impl_; }
  // A public object from its state, through its private constructor.
  template <typename T, typename... Args> static T make(Args&&... args) {
    return T(std::forward<Args>(args)...);
  }
};

// Const objects give const state.
template <typename T> auto& impl_of(T& object) {
  return Access::impl(object);
}

} // namespace bitnet::detail
