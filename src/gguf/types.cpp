// GGUF value and ggml tensor type tables, and the metadata Value.
#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "gguf/gguf.hpp"

namespace bitnet::gguf {

namespace {

struct TypeTraits {
  TensorType type;
  const char* name;
  uint32_t block_elements;
  uint32_t block_bytes; // unused for I2_S and TL1: n/4 + 32 bytes (docs/gguf-format.md §2, §3)
};

// ggml's type_traits (blck_size, type_size); ids 4 and 5 were removed from ggml long ago.
constexpr std::array<TypeTraits, 37> kTypes{{
    {TensorType::F32, "F32", 1, 4},
    {TensorType::F16, "F16", 1, 2},
    {TensorType::Q4_0, "Q4_0", 32, 18},
    {TensorType::Q4_1, "Q4_1", 32, 20},
    {TensorType::Q5_0, "Q5_0", 32, 22},
    {TensorType::Q5_1, "Q5_1", 32, 24},
    {TensorType::Q8_0, "Q8_0", 32, 34},
    {TensorType::Q8_1, "Q8_1", 32, 36},
    {TensorType::Q2_K, "Q2_K", 256, 84},
    {TensorType::Q3_K, "Q3_K", 256, 110},
    {TensorType::Q4_K, "Q4_K", 256, 144},
    {TensorType::Q5_K, "Q5_K", 256, 176},
    {TensorType::Q6_K, "Q6_K", 256, 210},
    {TensorType::Q8_K, "Q8_K", 256, 292},
    {TensorType::IQ2_XXS, "IQ2_XXS", 256, 66},
    {TensorType::IQ2_XS, "IQ2_XS", 256, 74},
    {TensorType::IQ3_XXS, "IQ3_XXS", 256, 98},
    {TensorType::IQ1_S, "IQ1_S", 256, 50},
    {TensorType::IQ4_NL, "IQ4_NL", 32, 18},
    {TensorType::IQ3_S, "IQ3_S", 256, 110},
    {TensorType::IQ2_S, "IQ2_S", 256, 82},
    {TensorType::IQ4_XS, "IQ4_XS", 256, 136},
    {TensorType::I8, "I8", 1, 1},
    {TensorType::I16, "I16", 1, 2},
    {TensorType::I32, "I32", 1, 4},
    {TensorType::I64, "I64", 1, 8},
    {TensorType::F64, "F64", 1, 8},
    {TensorType::IQ1_M, "IQ1_M", 256, 56},
    {TensorType::BF16, "BF16", 1, 2},
    {TensorType::Q4_0_4_4, "Q4_0_4_4", 32, 18},
    {TensorType::Q4_0_4_8, "Q4_0_4_8", 32, 18},
    {TensorType::Q4_0_8_8, "Q4_0_8_8", 32, 18},
    {TensorType::TQ1_0, "TQ1_0", 256, 54},
    {TensorType::TQ2_0, "TQ2_0", 256, 66},
    {TensorType::I2_S, "I2_S", 128, 32},
    {TensorType::TL1, "TL1", 128, 32},
    {TensorType::MXFP4, "MXFP4", 32, 17},
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
  // I2_S (and TL1) store 2 bits per weight, then one f32 scale padded to 32 bytes
  // (docs/gguf-format.md §2, §3).
  if (type == TensorType::I2_S || type == TensorType::TL1) return n_elements / 4 + 32;
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

std::size_t value_bytes(ValueType t) noexcept {
  switch (t) {
  case ValueType::uint8:
  case ValueType::int8:
  case ValueType::boolean:
    return 1;
  case ValueType::uint16:
  case ValueType::int16:
    return 2;
  case ValueType::uint32:
  case ValueType::int32:
  case ValueType::float32:
    return 4;
  case ValueType::uint64:
  case ValueType::int64:
  case ValueType::float64:
    return 8;
  case ValueType::string:
  case ValueType::array:
    return 0;
  }
  return 0;
}

namespace {

template <typename T> T load(std::string_view bytes) {
  T v;
  std::memcpy(&v, bytes.data(), sizeof v);
  return v;
}

template <typename T> std::string bytes_of(T v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}

} // namespace

Value Value::from_bytes(ValueType type, std::string_view bytes) {
  if (value_bytes(type) == 0 || bytes.size() != value_bytes(type))
    throw Error(ErrorKind::invalid_argument,
                fmt::format("{} bytes for a {} value", bytes.size(), to_string(type)));
  switch (type) {
  case ValueType::uint8:
    return u8(load<uint8_t>(bytes));
  case ValueType::int8:
    return i8(load<int8_t>(bytes));
  case ValueType::uint16:
    return u16(load<uint16_t>(bytes));
  case ValueType::int16:
    return i16(load<int16_t>(bytes));
  case ValueType::uint32:
    return u32(load<uint32_t>(bytes));
  case ValueType::int32:
    return i32(load<int32_t>(bytes));
  case ValueType::uint64:
    return u64(load<uint64_t>(bytes));
  case ValueType::int64:
    return i64(load<int64_t>(bytes));
  case ValueType::float32:
    return f32(load<float>(bytes));
  case ValueType::float64:
    return f64(load<double>(bytes));
  case ValueType::boolean:
    if (load<uint8_t>(bytes) > 1)
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("bool byte {}, expected 0 or 1", load<uint8_t>(bytes)));
    return boolean(load<uint8_t>(bytes) != 0);
  case ValueType::string:
  case ValueType::array:
    break;
  }
  throw Error(ErrorKind::invalid_argument, "unreachable");
}

std::string Value::to_bytes() const {
  switch (type_) {
  case ValueType::uint8:
    return bytes_of(static_cast<uint8_t>(as_uint()));
  case ValueType::int8:
    return bytes_of(static_cast<int8_t>(as_int()));
  case ValueType::uint16:
    return bytes_of(static_cast<uint16_t>(as_uint()));
  case ValueType::int16:
    return bytes_of(static_cast<int16_t>(as_int()));
  case ValueType::uint32:
    return bytes_of(static_cast<uint32_t>(as_uint()));
  case ValueType::int32:
    return bytes_of(static_cast<int32_t>(as_int()));
  case ValueType::uint64:
    return bytes_of(as_uint());
  case ValueType::int64:
    return bytes_of(as_int());
  case ValueType::float32:
    return bytes_of(static_cast<float>(as_float()));
  case ValueType::float64:
    return bytes_of(as_float());
  case ValueType::boolean:
    return bytes_of(static_cast<uint8_t>(as_bool()));
  case ValueType::string:
  case ValueType::array:
    break;
  }
  throw Error(ErrorKind::invalid_argument,
              fmt::format("a {} value has no fixed-size bytes", to_string(type_)));
}

Value Value::array(ValueType elem_type, const std::vector<Value>& items) {
  if (elem_type == ValueType::string) {
    std::vector<std::string> strings;
    strings.reserve(items.size());
    for (const Value& item : items) {
      if (item.type() != ValueType::string)
        throw Error(ErrorKind::invalid_argument,
                    fmt::format("array of string: item of type {}", to_string(item.type())));
      strings.push_back(item.as_string());
    }
    return array(strings);
  }
  if (elem_type == ValueType::array)
    throw Error(ErrorKind::invalid_argument, "arrays of arrays are not supported");
  std::string bytes;
  bytes.reserve(items.size() * value_bytes(elem_type));
  for (const Value& item : items) {
    if (item.type() != elem_type)
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("array of {}: item of type {}", to_string(elem_type),
                              to_string(item.type())));
    bytes += item.to_bytes();
  }
  return Value(ValueType::array, Items{std::move(bytes), {}}, elem_type);
}

Value Value::array(const std::vector<std::string>& strings) {
  std::size_t total = 0;
  for (const std::string& s : strings)
    total += s.size();
  std::string bytes;
  bytes.reserve(total);
  std::vector<uint64_t> ends;
  ends.reserve(strings.size());
  for (const std::string& s : strings) {
    bytes += s;
    ends.push_back(bytes.size());
  }
  return array_of_strings(std::move(bytes), std::move(ends));
}

Value Value::array_of_bytes(ValueType elem_type, std::string bytes) {
  const std::size_t size = value_bytes(elem_type);
  if (size == 0 || bytes.size() % size != 0)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("{} bytes are not a whole number of {} items", bytes.size(),
                            to_string(elem_type)));
  if (elem_type == ValueType::boolean)
    for (std::size_t i = 0; i < bytes.size(); ++i)
      if (static_cast<uint8_t>(bytes[i]) > 1)
        throw Error(ErrorKind::invalid_argument, fmt::format("bool item {} is {}, expected 0 or 1",
                                                             i, static_cast<uint8_t>(bytes[i])));
  return Value(ValueType::array, Items{std::move(bytes), {}}, elem_type);
}

Value Value::array_of_strings(std::string bytes, std::vector<uint64_t> ends) {
  uint64_t prev = 0;
  for (uint64_t end : ends) {
    if (end < prev || end > bytes.size())
      throw Error(ErrorKind::invalid_argument, "string array ends are out of order or range");
    prev = end;
  }
  if (prev != bytes.size())
    throw Error(ErrorKind::invalid_argument, "string array bytes beyond its last item");
  return Value(ValueType::array, Items{std::move(bytes), std::move(ends)}, ValueType::string);
}

ValueType Value::elem_type() const {
  if (type_ != ValueType::array) mismatch("array", type_);
  return elem_type_;
}

const Value::Items& Value::items() const {
  if (type_ != ValueType::array) mismatch("array", type_);
  return std::get<Items>(v_);
}

std::size_t Value::size() const {
  const Items& it = items();
  return elem_type_ == ValueType::string ? it.ends.size()
                                         : it.bytes.size() / value_bytes(elem_type_);
}

Value Value::at(std::size_t i) const {
  if (i >= size())
    throw Error(ErrorKind::format, fmt::format("item {} of an array of {}", i, size()));
  if (elem_type_ == ValueType::string) return string(std::string(string_at(i)));
  const std::size_t size = value_bytes(elem_type_);
  return from_bytes(elem_type_, std::string_view(items().bytes).substr(i * size, size));
}

std::string_view Value::string_at(std::size_t i) const {
  const Items& it = items();
  if (elem_type_ != ValueType::string) mismatch("an array of string", elem_type_);
  if (i >= it.ends.size())
    throw Error(ErrorKind::format, fmt::format("item {} of an array of {}", i, it.ends.size()));
  const uint64_t begin = i == 0 ? 0 : it.ends[i - 1];
  return std::string_view(it.bytes).substr(begin, it.ends[i] - begin);
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

} // namespace bitnet::gguf
