// What a GGUF file holds, read without running it: its metadata, its tensor table, and why
// this build could not run it. Works on any valid GGUF file, whatever its architecture or
// tensor types (`bitnet info`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bitnet {

namespace detail {
struct Access; // the library's own door to the state behind this API (src/util/access.hpp)
}
namespace gguf {
class Value; // src/gguf
}

// Metadata value types, numbered as in the file format.
enum class GgufType : uint32_t {
  uint8 = 0,
  int8 = 1,
  uint16 = 2,
  int16 = 3,
  uint32 = 4,
  int32 = 5,
  float32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  uint64 = 10,
  int64 = 11,
  float64 = 12,
};
const char* to_string(GgufType type) noexcept; // "uint8", "int32", "float32", "bool", "string", ...

// A metadata value, a view into its GgufFile (valid while the file object lives).
class GgufValue {
public:
  GgufType type() const;
  GgufType elem_type() const;                // of an array's items
  std::size_t size() const;                  // an array's item count (0 for other types)
  GgufValue operator[](std::size_t i) const; // an array's item i (< size())

  // Typed reads: integers convert between widths when the value fits, floats read f32 and
  // f64. A mismatch throws Error(format) "expected X, found Y".
  uint64_t as_uint() const;
  int64_t as_int() const;
  double as_float() const;
  bool as_bool() const;
  const std::string& as_string() const;

private:
  friend struct detail::Access;
  explicit GgufValue(const gguf::Value& value) : value_(&value) {}
  explicit GgufValue(std::shared_ptr<const gguf::Value> item)
      : item_(std::move(item)), value_(item_.get()) {}
  std::shared_ptr<const gguf::Value> item_; // an array item (arrays keep their items packed)
  const gguf::Value* value_;
};

struct GgufEntry {
  std::string_view key;
  GgufValue value;
};

struct GgufTensor {
  std::string name;
  std::string type;            // "F32", "F16", "Q8_0", "I2_S", ...
  std::vector<uint64_t> shape; // innermost first
  uint64_t n_elements = 0;
  uint64_t bytes = 0;
  uint64_t offset = 0; // of its data, from the start of the file
};

class GgufFile {
public:
  // Maps and parses the file. Error(io) when it cannot be read, Error(format) naming the
  // byte offset, key or tensor when it is not valid GGUF.
  static GgufFile open(const std::string& path);
  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  const std::string& path() const;
  uint64_t file_size() const;
  uint32_t version() const;
  uint32_t alignment() const;
  uint64_t data_offset() const; // where the tensor data starts

  std::vector<GgufEntry> metadata() const; // in file order
  std::optional<GgufValue> find(std::string_view key) const;
  std::string architecture() const;               // general.architecture ("" when absent)
  const std::vector<GgufTensor>& tensors() const; // in file order

  // Why this build cannot run the file (the model loader's own checks: architecture,
  // hyper-parameters, every tensor's presence, shape and type), or nullopt when it can.
  std::optional<std::string> cannot_run_reason() const;

private:
  friend struct detail::Access;
  struct Impl;
  explicit GgufFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace bitnet
