// GGUF v2/v3 reader (mmap'd, every count/offset checked) and streaming writer.
// The format: docs/gguf-format.md §1 (container), §2 (tensor types) and §3 (I2_S).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "bitnet/error.hpp"

namespace bitnet::gguf {

// clang-format off
enum class ValueType : uint32_t {
  uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6,
  boolean = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12,
};
// clang-format on
const char* to_string(ValueType type) noexcept;
// Bytes of one value of a fixed-size type; 0 for string and array.
std::size_t value_bytes(ValueType type) noexcept;

// ggml tensor types (ggml.h's enum ggml_type, plus the fork's I2_S and TL1), so a file with
// types this build cannot run is still read and described; load_config says which it runs.
// Id 36 is always I2_S (docs/gguf-format.md §2). Id 39 is MXFP4 in mainline, TL2 in the fork: the
// reader refuses it in a fork-architecture file (TL2's size depends on its kernel tiling).
// clang-format off
enum class TensorType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  Q4_0_4_4 = 31, Q4_0_4_8 = 32, Q4_0_8_8 = 33, TQ1_0 = 34, TQ2_0 = 35, I2_S = 36, TL1 = 38,
  MXFP4 = 39,
};
// clang-format on
const char* type_name(TensorType type) noexcept;                 // "F32", "I2_S", ...
std::optional<TensorType> type_from_name(std::string_view name); // case-insensitive
std::optional<TensorType> type_from_id(uint32_t id);
uint32_t
block_elements(TensorType type) noexcept; // elements per block (I2_S: 128, its packing block)
// Bytes a tensor of `n_elements` occupies (I2_S and TL1: n/4 + 32). Throws Error(format)
// when n_elements is not a whole number of blocks or the size overflows.
uint64_t tensor_nbytes(TensorType type, uint64_t n_elements);

// A metadata value. Owns its data (strings are copied out of the mapping). An array holds
// scalars of one type stored compactly: fixed-size items as their little-endian bytes,
// strings as one buffer plus end offsets, so it takes about its size in the file and no
// object per item. Arrays of arrays are not supported (ggml's reader rejects them too).
class Value {
public:
  static Value u8(uint8_t v);
  static Value i8(int8_t v);
  static Value u16(uint16_t v);
  static Value i16(int16_t v);
  static Value u32(uint32_t v);
  static Value i32(int32_t v);
  static Value u64(uint64_t v);
  static Value i64(int64_t v);
  static Value f32(float v);
  static Value f64(double v);
  static Value boolean(bool v);
  static Value string(std::string v);
  // Every item must be a scalar of type `elem_type` (throws Error(invalid_argument) otherwise).
  static Value array(ValueType elem_type, const std::vector<Value>& items);
  static Value array(const std::vector<std::string>& strings);
  // Arrays from their stored form: `bytes` holds the items of a fixed-size type
  // back to back, little-endian; string items are the ranges [ends[i-1], ends[i]) of `bytes`.
  // Throws Error(invalid_argument) when the sizes do not fit or a bool is not 0 or 1.
  static Value array_of_bytes(ValueType elem_type, std::string bytes);
  static Value array_of_strings(std::string bytes, std::vector<uint64_t> ends);
  // A fixed-size scalar from / to its value_bytes(type) little-endian bytes, as GGUF stores
  // it (a bool byte must be 0 or 1). Other types throw Error(invalid_argument).
  static Value from_bytes(ValueType type, std::string_view bytes);
  std::string to_bytes() const;

  ValueType type() const noexcept { return type_; }
  ValueType elem_type() const; // arrays only

  // Typed reads. Integers convert between widths when the value fits; floats read
  // f32/f64. A mismatch throws Error(format) "expected X, found Y".
  uint64_t as_uint() const;
  int64_t as_int() const;
  double as_float() const;
  bool as_bool() const;
  const std::string& as_string() const;

  // Arrays: the number of items, item i as a scalar Value, a string item without a copy.
  // A non-array, a wrong item type or i >= size() throws Error(format).
  std::size_t size() const;
  Value at(std::size_t i) const;
  std::string_view string_at(std::size_t i) const;

  bool operator==(const Value& other) const = default;

private:
  struct Items {
    std::string bytes;          // fixed-size items, or the string items' bytes
    std::vector<uint64_t> ends; // string arrays: where each item ends in `bytes`
    bool operator==(const Items& other) const = default;
  };
  using Storage = std::variant<uint64_t, int64_t, double, bool, std::string, Items>;
  Value(ValueType type, Storage v, ValueType elem_type = ValueType::uint8)
      : type_(type), elem_type_(elem_type), v_(std::move(v)) {}
  const Items& items() const;
  ValueType type_ = ValueType::uint8;
  ValueType elem_type_ = ValueType::uint8;
  Storage v_;
};

struct KeyValue {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<uint64_t> ne; // innermost first, 1..4 dims
  uint64_t offset = 0;      // relative to the data section
  uint64_t nbytes = 0;      // tensor_nbytes(type, n_elements())
  uint64_t n_elements() const;
};

// A parsed GGUF file. Tensor data are views into the mapping (no copies).
class File {
public:
  // mmap + parse + validate. Throws Error(io) when unreadable, Error(format) when
  // corrupt (message names byte offset, key or tensor, expected vs found).
  static File open(const std::string& path);
  // Parse a buffer the caller keeps alive (fuzzing, tests).
  static File parse(std::span<const uint8_t> bytes, std::string name = "<memory>");

  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  ~File();

  const std::string& path() const;
  uint32_t version() const;
  uint64_t file_size() const;
  uint32_t alignment() const;
  uint64_t data_offset() const; // absolute offset of the data section

  const std::vector<KeyValue>& metadata() const; // file order
  const Value* find(std::string_view key) const;
  // Typed getters name the key in their errors; get_* throw Error(format) when missing.
  uint64_t get_uint(std::string_view key) const;
  double get_float(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  std::optional<uint64_t> find_uint(std::string_view key) const;
  std::optional<double> find_float(std::string_view key) const;
  std::optional<std::string> find_string(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;
  std::string architecture() const; // general.architecture ("" when absent)

  const std::vector<TensorInfo>& tensors() const; // file order
  const TensorInfo* find_tensor(std::string_view name) const;
  std::span<const uint8_t> tensor_data(const TensorInfo& tensor) const;
  // Copies `view` (a range of the mapping, e.g. rows of a tensor_data()) to `out` with
  // pread, leaving the mapping untouched: reading a few rows of a big tensor this way does
  // not fault its pages into the process (parse(): a memcpy). Error(io) on a read error.
  void copy(std::span<const uint8_t> view, uint8_t* out) const;

private:
  struct Impl;
  explicit File(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Writes a GGUF v3 file: header, metadata, tensor infos, then each tensor's bytes in
// declaration order, streamed from a producer so memory stays bounded.
class Writer {
public:
  explicit Writer(uint32_t alignment = 32);

  // Duplicate keys or tensor names throw Error(invalid_argument).
  void add_kv(std::string key, Value value);
  void add_tensor(std::string name, TensorType type, std::vector<uint64_t> ne);

  const std::vector<KeyValue>& metadata() const;
  const std::vector<TensorInfo>& tensors() const; // offsets filled in

  class Sink {
  public:
    virtual ~Sink() = default;
    virtual void write(std::span<const uint8_t> bytes) = 0;
  };
  // produce(i, info, sink) must write exactly info.nbytes bytes for tensor i.
  using Producer = std::function<void(std::size_t index, const TensorInfo& info, Sink& sink)>;
  // Writes to `path` (via a temporary file renamed into place). Throws Error(io).
  void write(const std::string& path, const Producer& produce) const;

private:
  uint32_t alignment_;
  std::vector<KeyValue> metadata_;
  std::vector<TensorInfo> tensors_;
};

} // namespace bitnet::gguf
