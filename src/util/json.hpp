// A small JSON value with a strict parser and a compact writer. Used for tokenizer.json
// import, test fixtures, --jsonl input, receipts and --json output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace bitnet::json {

class Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>; // keeps insertion order

class Value {
public:
  Value() = default; // null
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  Value(int v) : v_(static_cast<int64_t>(v)) {}
  Value(int64_t v) : v_(v) {}
  Value(uint64_t v) : v_(static_cast<int64_t>(v)) {}
  Value(double v) : v_(v) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(Array a) : v_(std::move(a)) {}
  Value(Object o) : v_(std::move(o)) {}

  bool is_null() const { return v_.index() == 0; }
  bool is_bool() const { return v_.index() == 1; }
  bool is_int() const { return v_.index() == 2; }
  bool is_number() const { return v_.index() == 2 || v_.index() == 3; }
  bool is_string() const { return v_.index() == 4; }
  bool is_array() const { return v_.index() == 5; }
  bool is_object() const { return v_.index() == 6; }

  // Typed reads throw Error(invalid_input) on a type mismatch.
  bool as_bool() const;
  int64_t as_int() const; // integral numbers only
  double as_double() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  const Object& as_object() const;
  Array& as_array();
  Object& as_object();

  // Object access: find returns nullptr when absent; at throws Error(invalid_input).
  const Value* find(std::string_view key) const;
  const Value& at(std::string_view key) const;
  // Appends (or replaces) a member; the value must be an object (or null, which becomes one).
  Value& set(std::string key, Value value);

  bool operator==(const Value& other) const = default;

private:
  std::variant<std::nullptr_t, bool, int64_t, double, std::string, Array, Object> v_;
};

// Strict RFC 8259 parsing (nesting depth ≤ 512). Throws Error(invalid_input) with the byte
// offset of the problem.
Value parse(std::string_view text);
// Compact serialisation; indent > 0 pretty-prints. Non-ASCII UTF-8 is written raw.
std::string dump(const Value& value, int indent = 0);
// A JSON string literal for s (quotes included); invalid UTF-8 bytes become U+FFFD.
std::string quote(std::string_view s);

} // namespace bitnet::json
