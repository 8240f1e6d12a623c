// GGUF value and ggml tensor type tables, and the metadata Value.
#include <algorithm>
#include <array>
#include <cctype>
#include <limits>

#include <fmt/format.h>

#include "gguf/gguf.hpp"

namespace bitnet::gguf {

namespace {

struct TypeTraits {
  TensorType type;
  const char* name;
  uint32_t block_elements;
  uint32_t block_bytes; // unused for I2_S, whose size is n/4 + 32 (facts §1)
};

constexpr std::array<TypeTraits, 8> kTypes{{
    {TensorType::F32, "F32", 1, 4},
    {TensorType::F16, "F16", 1, 2},
    {TensorType::Q8_0, "Q8_0", 32, 34},
    {TensorType::Q6_K, "Q6_K", 256, 210},
    {TensorType::BF16, "BF16", 1, 2},
    {TensorType::TQ1_0, "TQ1_0", 256, 54},
    {TensorType::TQ2_0, "TQ2_0", 256, 66},
    {TensorType::I2_S, "I2_S", 128, 32},
}};

const TypeTraits* traits(TensorType type) noexcept {
  for (const auto& t : kTypes) {
    if (t.type == type) return &t;
  }
  return nullptr;
}

bool is_unsigned(ValueType t) {
  return t == ValueType::uint8 || t == ValueType::uint16 || t == ValueType::uint32 ||
         t == ValueType::uint64;
}
bool is_signed(ValueType t) {
  return t == ValueType::int8 || t == ValueType::int16 || t == ValueType::int32 ||
         t == ValueType::int64;
}

[[noreturn]] void mismatch(const char* expected, ValueType found) {
  throw Error(ErrorKind::format, fmt::format("expected {}, found {}", expected, to_string(found)));
}

} // namespace

const char* to_string(ValueType type) noexcept {
  switch (type) {
  case ValueType::uint8:
    return "uint8";
  case ValueType::int8:
    return "int8";
  case ValueType::uint16:
    return "uint16";
  case ValueType::int16:
    return "int16";
  case ValueType::uint32:
    return "uint32";
  case ValueType::int32:
    return "int32";
  case ValueType::float32:
    return "float32";
  case ValueType::boolean:
    return "bool";
  case ValueType::string:
    return "string";
  case ValueType::array:
    return "array";
  case ValueType::uint64:
    return "uint64";
  case ValueType::int64:
    return "int64";
  case ValueType::float64:
    return "float64";
  }
  return "unknown";
}

const char* type_name(TensorType type) noexcept {
  const TypeTraits* t = traits(type);
  return t ? t->name : "unknown";
}

std::optional<TensorType> type_from_name(std::string_view name) {
  for (const auto& t : kTypes) {
    const std::string_view candidate = t.name;
    if (std::equal(name.begin(), name.end(), candidate.begin(), candidate.end(),
                   [](char a, char b) {
                     return std::toupper(static_cast<unsigned char>(a)) ==
                            std::toupper(static_cast<unsigned char>(b));
                   })) {
      return t.type;
    }
  }
  return std::nullopt;
}

std::optional<TensorType> type_from_id(uint32_t id) {
  for (const auto& t : kTypes) {
    if (static_cast<uint32_t>(t.type) == id) return t.type;
  }
  return std::nullopt;
}

uint32_t block_elements(TensorType type) noexcept {
  const TypeTraits* t = traits(type);
  return t ? t->block_elements : 0;
}

uint64_t tensor_nbytes(TensorType type, uint64_t n_elements) {
  const TypeTraits* t = traits(type);
  if (!t) {
    throw Error(ErrorKind::format,
                fmt::format("unknown ggml type id {}", static_cast<uint32_t>(type)));
  }
  if (n_elements % t->block_elements != 0) {
    throw Error(ErrorKind::format,
                fmt::format("{} tensor of {} elements: expected a multiple of {} elements", t->name,
                            n_elements, t->block_elements));
  }
  // I2_S stores 2 bits per weight, then one f32 scale padded to 32 bytes (facts §1).
  if (type == TensorType::I2_S) return n_elements / 4 + 32;
  const uint64_t blocks = n_elements / t->block_elements;
  if (blocks > std::numeric_limits<uint64_t>::max() / t->block_bytes) {
    throw Error(ErrorKind::format,
                fmt::format("{} tensor of {} elements: size overflows", t->name, n_elements));
  }
  return blocks * t->block_bytes;
}

uint64_t TensorInfo::n_elements() const {
  uint64_t n = 1;
  for (uint64_t d : ne)
    n *= d;
  return n;
}

Value Value::u8(uint8_t v) {
  return Value(ValueType::uint8, uint64_t{v});
}
Value Value::i8(int8_t v) {
  return Value(ValueType::int8, int64_t{v});
}
Value Value::u16(uint16_t v) {
  return Value(ValueType::uint16, uint64_t{v});
}
Value Value::i16(int16_t v) {
  return Value(ValueType::int16, int64_t{v});
}
Value Value::u32(uint32_t v) {
  return Value(ValueType::uint32, uint64_t{v});
}
Value Value::i32(int32_t v) {
  return Value(ValueType::int32, int64_t{v});
}
Value Value::u64(uint64_t v) {
  return Value(ValueType::uint64, v);
}
Value Value::i64(int64_t v) {
  return Value(ValueType::int64, v);
}
Value Value::f32(float v) {
  return Value(ValueType::float32, double{v});
}
Value Value::f64(double v) {
  return Value(ValueType::float64, v);
}
Value Value::boolean(bool v) {
  return Value(ValueType::boolean, v);
}
Value Value::string(std::string v) {
  return Value(ValueType::string, std::move(v));
}

Value Value::array(ValueType elem_type, Array items) {
  for (const Value& item : items) {
    if (item.type() != elem_type) {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("array of {}: item of type {}", to_string(elem_type),
                              to_string(item.type())));
    }
  }
  return Value(ValueType::array, std::move(items), elem_type);
}

ValueType Value::elem_type() const {
  if (type_ != ValueType::array) mismatch("array", type_);
  return elem_type_;
}

uint64_t Value::as_uint() const {
  if (is_unsigned(type_)) return std::get<uint64_t>(v_);
  if (is_signed(type_)) {
    const int64_t v = std::get<int64_t>(v_);
    if (v < 0) {
      throw Error(ErrorKind::format, fmt::format("expected a non-negative integer, found {}", v));
    }
    return static_cast<uint64_t>(v);
  }
  mismatch("an integer", type_);
}

int64_t Value::as_int() const {
  if (is_signed(type_)) return std::get<int64_t>(v_);
  if (is_unsigned(type_)) {
    const uint64_t v = std::get<uint64_t>(v_);
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw Error(ErrorKind::format, fmt::format("expected an int64, found {}", v));
    }
    return static_cast<int64_t>(v);
  }
  mismatch("an integer", type_);
}

double Value::as_float() const {
  if (type_ == ValueType::float32 || type_ == ValueType::float64) return std::get<double>(v_);
  mismatch("a float", type_);
}

bool Value::as_bool() const {
  if (type_ == ValueType::boolean) return std::get<bool>(v_);
  mismatch("bool", type_);
}

const std::string& Value::as_string() const {
  if (type_ == ValueType::string) return std::get<std::string>(v_);
  mismatch("string", type_);
}

const Value::Array& Value::as_array() const {
  if (type_ == ValueType::array) return std::get<Array>(v_);
  mismatch("array", type_);
}

} // namespace bitnet::gguf
