// GGUF v3 writer: the header is built in memory, tensor data are streamed from a producer
// into an OutputFile (a temporary file renamed into place only when complete).
#include <bit>
#include <cstring>

#include <fmt/format.h>

#include "bitnet/output_file.hpp"
#include "gguf/gguf.hpp"

namespace bitnet::gguf {

namespace {

constexpr uint32_t kDefaultAlignment = 32;
constexpr std::size_t kMaxTensorName = 64;
constexpr std::string_view kAlignmentKey = "general.alignment";

uint64_t align_up(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

template <typename T> void put(std::vector<uint8_t>& out, T v) {
  const std::size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &v, sizeof(T));
}

void put_string(std::vector<uint8_t>& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

void put_value(std::vector<uint8_t>& out, const Value& v) {
  switch (v.type()) {
  case ValueType::string:
    put_string(out, v.as_string());
    break;
  case ValueType::array:
    put(out, static_cast<uint32_t>(v.elem_type()));
    put<uint64_t>(out, v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v.elem_type() == ValueType::string)
        put_string(out, v.string_at(i));
      else
        put_value(out, v.at(i));
    }
    break;
  default: {
    const std::string bytes = v.to_bytes();
    out.insert(out.end(), bytes.begin(), bytes.end());
  }
  }
}

// Buffered writes to the output file; counts what each tensor producer wrote.
class FileSink final : public Writer::Sink {
public:
  explicit FileSink(OutputFile& file) : file_(file) { buffer_.reserve(kBuffer); }

  void write(std::span<const uint8_t> bytes) override {
    written_ += bytes.size();
    if (buffer_.size() + bytes.size() > kBuffer) flush();
    if (bytes.size() >= kBuffer) {
      write_all(bytes);
    } else {
      buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    }
  }

  void zeros(uint64_t n) {
    static constexpr uint8_t kZeros[64] = {};
    while (n > 0) {
      const uint64_t k = std::min<uint64_t>(n, sizeof(kZeros));
      write({kZeros, k});
      n -= k;
    }
  }

  void flush() {
    write_all(buffer_);
    buffer_.clear();
  }

  uint64_t written() const { return written_; }

private:
  static constexpr std::size_t kBuffer = 1 << 20;

  void write_all(std::span<const uint8_t> bytes) {
    file_.write({reinterpret_cast<const char*>(bytes.data()), bytes.size()});
  }

  OutputFile& file_;
  std::vector<uint8_t> buffer_;
  uint64_t written_ = 0;
};

} // namespace

Writer::Writer(uint32_t alignment) : alignment_(alignment) {
  if (alignment == 0 || !std::has_single_bit(alignment)) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("GGUF alignment must be a power of two, got {}", alignment));
  }
}

void Writer::add_kv(std::string key, Value value) {
  if (key.empty()) throw Error(ErrorKind::invalid_argument, "GGUF metadata key is empty");
  for (const KeyValue& kv : metadata_) {
    if (kv.key == key) {
      throw Error(ErrorKind::invalid_argument, fmt::format("duplicate GGUF key '{}'", key));
    }
  }
  if (key == kAlignmentKey &&
      (value.type() != ValueType::uint32 || value.as_uint() != alignment_)) {
    throw Error(
        ErrorKind::invalid_argument,
        fmt::format("key '{}' must be the writer's alignment {} as uint32", key, alignment_));
  }
  metadata_.push_back({std::move(key), std::move(value)});
}

void Writer::add_tensor(std::string name, TensorType type, std::vector<uint64_t> ne) {
  if (name.empty() || name.size() > kMaxTensorName) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("tensor name '{}': expected 1..{} bytes", name, kMaxTensorName));
  }
  for (const TensorInfo& t : tensors_) {
    if (t.name == name) {
      throw Error(ErrorKind::invalid_argument, fmt::format("duplicate tensor name '{}'", name));
    }
  }
  if (ne.empty() || ne.size() > 4) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("tensor '{}': expected 1..4 dims, got {}", name, ne.size()));
  }
  uint64_t n = 1;
  for (uint64_t d : ne) {
    if (d == 0 || n > static_cast<uint64_t>(INT64_MAX) / d) {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("tensor '{}': dimension {} is zero or overflows", name, d));
    }
    n *= d;
  }
  if (ne[0] % block_elements(type) != 0) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("tensor '{}': ne[0] = {} is not a multiple of {} for {}", name, ne[0],
                            block_elements(type), type_name(type)));
  }
  TensorInfo t;
  t.name = std::move(name);
  t.type = type;
  t.ne = std::move(ne);
  t.nbytes = tensor_nbytes(type, n);
  t.offset =
      tensors_.empty() ? 0 : align_up(tensors_.back().offset + tensors_.back().nbytes, alignment_);
  tensors_.push_back(std::move(t));
}

const std::vector<KeyValue>& Writer::metadata() const {
  return metadata_;
}
const std::vector<TensorInfo>& Writer::tensors() const {
  return tensors_;
}

void Writer::write(const std::string& path, const Producer& produce) const {
  if (alignment_ != kDefaultAlignment) {
    bool declared = false;
    for (const KeyValue& kv : metadata_)
      declared = declared || kv.key == kAlignmentKey;
    if (!declared) {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("alignment {} needs the key '{}'", alignment_, kAlignmentKey));
    }
  }

  std::vector<uint8_t> header;
  const std::string_view magic = "GGUF";
  header.assign(magic.begin(), magic.end());
  put<uint32_t>(header, 3);
  put<uint64_t>(header, tensors_.size());
  put<uint64_t>(header, metadata_.size());
  for (const KeyValue& kv : metadata_) {
    put_string(header, kv.key);
    put(header, static_cast<uint32_t>(kv.value.type()));
    put_value(header, kv.value);
  }
  for (const TensorInfo& t : tensors_) {
    put_string(header, t.name);
    put(header, static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne)
      put(header, d);
    put(header, static_cast<uint32_t>(t.type));
    put(header, t.offset);
  }
  header.resize(align_up(header.size(), alignment_), 0);

  OutputFile file(path);
  FileSink sink(file);
  sink.write(header);
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    const TensorInfo& t = tensors_[i];
    const uint64_t start = sink.written();
    produce(i, t, sink);
    const uint64_t wrote = sink.written() - start;
    if (wrote != t.nbytes) {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("tensor '{}': producer wrote {} bytes, expected {}", t.name, wrote,
                              t.nbytes));
    }
    sink.zeros(align_up(t.nbytes, alignment_) - t.nbytes);
  }
  sink.flush();
  file.commit();
}

} // namespace bitnet::gguf
