// GGUF reader: mmap the file, then parse and validate every field against the bytes that
// remain before using it, so a corrupt file raises Error(format) and never over-allocates.
#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "gguf/gguf.hpp"
#include "gguf/mapping_guard.hpp"

namespace bitnet::gguf {

namespace {

constexpr uint32_t kDefaultAlignment = 32;
constexpr uint64_t kMaxTensorName = 64; // GGUF spec: names are at most 64 bytes
constexpr uint32_t kMaxDims = 4;
// Far above any real file (tens of keys, hundreds of tensors), low enough that the per-entry
// objects (a key or name, a Value or TensorInfo, an index entry: a few hundred bytes) stay
// a few MB whatever the file claims.
constexpr uint64_t kMaxKeys = 1 << 16;
constexpr uint64_t kMaxTensors = 1 << 16;
// Smallest encodings, used to bound counts by the bytes left before reserving.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1; // key len, 1-byte key, type, 1-byte value
constexpr uint64_t kMinTensorBytes =
    8 + 1 + 4 + 8 + 4 + 8; // name len, name, n_dims, ne0, type, offset

uint64_t min_value_bytes(ValueType type) {
  if (const std::size_t n = value_bytes(type)) return n;
  return type == ValueType::string ? 8 : 4 + 8; // a length; an array's type and count
}

bool valid_value_type(uint32_t id) {
  return id <= static_cast<uint32_t>(ValueType::float64);
}

// Reads little-endian fields from a byte span; every read is bounds-checked and every
// error names the file, the field and its byte offset.
class Cursor {
public:
  Cursor(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  [[noreturn]] void fail(std::string_view what, uint64_t at, std::string_view expected,
                         std::string_view found) const {
    throw Error(ErrorKind::format, fmt::format("{}: {} at byte {}: expected {}, found {}", name_,
                                               what, at, expected, found));
  }

  void need(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      fail(what, pos_, fmt::format("{} bytes", n),
           fmt::format("{} bytes before end of file", remaining()));
    }
  }

  template <typename T> T read(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string_view read_bytes(uint64_t n, std::string_view what) {
    need(n, what);
    const std::string_view v(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return v;
  }

  // A string's bytes (u64 length, then the bytes), as a view into the buffer.
  std::string_view read_string_view(std::string_view what) {
    const uint64_t at = pos_;
    const auto len = read<uint64_t>(what);
    if (len > remaining()) {
      fail(what, at, fmt::format("a string length of at most {}", remaining()),
           fmt::format("{}", len));
    }
    return read_bytes(len, what);
  }

  const std::string& name() const { return name_; }

private:
  std::span<const uint8_t> bytes_;
  const std::string& name_;
  uint64_t pos_ = 0;
};

// An array's items, read straight into the compact storage of Value (no object per item).
Value read_array(Cursor& c, const std::string& what) {
  const uint64_t type_at = c.pos();
  const auto elem_id = c.read<uint32_t>(what + " (array type)");
  if (!valid_value_type(elem_id)) {
    c.fail(what + " (array type)", type_at, "a value type 0..12", fmt::format("{}", elem_id));
  }
  const auto elem = static_cast<ValueType>(elem_id);
  if (elem == ValueType::array) {
    throw Error(ErrorKind::unsupported,
                fmt::format("{}: {} at byte {}: arrays of arrays are not supported (ggml "
                            "rejects them too)",
                            c.name(), what, type_at));
  }
  const uint64_t count_at = c.pos();
  const auto count = c.read<uint64_t>(what + " (array count)");
  if (count > c.remaining() / min_value_bytes(elem)) {
    c.fail(what + " (array count)", count_at,
           fmt::format("at most {} {} items in the bytes left",
                       c.remaining() / min_value_bytes(elem), to_string(elem)),
           fmt::format("{}", count));
  }
  const uint64_t items_at = c.pos();
  if (value_bytes(elem) != 0) {
    const std::string_view bytes = c.read_bytes(count * min_value_bytes(elem), what);
    if (elem == ValueType::boolean) {
      for (std::size_t i = 0; i < bytes.size(); ++i) {
        const auto b = static_cast<uint8_t>(bytes[i]);
        if (b > 1) c.fail(what, items_at + i, "bool 0 or 1", fmt::format("{}", b));
      }
    }
    return Value::array_of_bytes(elem, std::string(bytes));
  }
  // Strings: measure first (every length checked), so the buffer is allocated once.
  Cursor scan = c;
  uint64_t total = 0;
  for (uint64_t i = 0; i < count; ++i)
    total += scan.read_string_view(what).size();
  std::string bytes;
  bytes.reserve(total);
  std::vector<uint64_t> ends;
  ends.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    bytes += c.read_string_view(what);
    ends.push_back(bytes.size());
  }
  return Value::array_of_strings(std::move(bytes), std::move(ends));
}

Value read_value(Cursor& c, ValueType type, const std::string& key) {
  const std::string what = fmt::format("value of key '{}'", key);
  if (type == ValueType::string) return Value::string(std::string(c.read_string_view(what)));
  if (type == ValueType::array) return read_array(c, what);
  const uint64_t at = c.pos();
  const std::string_view bytes = c.read_bytes(value_bytes(type), what);
  if (type == ValueType::boolean && static_cast<uint8_t>(bytes[0]) > 1)
    c.fail(what, at, "bool 0 or 1", fmt::format("{}", static_cast<uint8_t>(bytes[0])));
  return Value::from_bytes(type, bytes);
}

} // namespace

struct File::Impl {
  std::string path;
  void* mapping = nullptr; // owned when opened from a path
  int fd = -1;             // kept open for copy(): reads that leave the mapping untouched
  std::span<const uint8_t> bytes;
  uint32_t version = 0;
  uint32_t alignment = kDefaultAlignment;
  uint64_t data_offset = 0;
  std::vector<KeyValue> metadata;
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::size_t, std::less<>> key_index;
  std::map<std::string, std::size_t, std::less<>> tensor_index;
  MappingGuard guard;       // the mapping's SIGBUS becomes a one-line error
  std::string architecture; // general.architecture when it is a string
  bool fork_arch = false;   // a bitnet.cpp architecture: id 39 is TL2 (docs/gguf-format.md §2)

  ~Impl() {
    guard = MappingGuard(); // unguard before the range can be reused
    if (mapping) munmap(mapping, bytes.size());
    if (fd >= 0) ::close(fd);
  }

  void parse();
  void parse_header(Cursor& c, uint64_t& n_tensors, uint64_t& n_kv);
  void parse_tensor_info(Cursor& c);
  void validate_tensor_ranges();
};

void File::Impl::parse_header(Cursor& c, uint64_t& n_tensors, uint64_t& n_kv) {
  const auto magic = c.read<uint32_t>("magic");
  if (std::memcmp(&magic, "GGUF", 4) != 0) {
    c.fail("magic", 0, "\"GGUF\" (47 47 55 46)",
           fmt::format("{:02x} {:02x} {:02x} {:02x}", magic & 0xFF, (magic >> 8) & 0xFF,
                       (magic >> 16) & 0xFF, magic >> 24));
  }
  version = c.read<uint32_t>("version");
  if (version != 2 && version != 3) {
    const bool swapped = __builtin_bswap32(version) == 2 || __builtin_bswap32(version) == 3;
    c.fail("version", 4, "2 or 3",
           fmt::format("{}{}", version, swapped ? " (a big-endian file, not supported)" : ""));
  }
  n_tensors = c.read<uint64_t>("tensor count");
  n_kv = c.read<uint64_t>("metadata count");
  if (n_kv > kMaxKeys) {
    c.fail("metadata count", 16, fmt::format("at most {} (this reader's limit)", kMaxKeys),
           fmt::format("{}", n_kv));
  }
  if (n_tensors > kMaxTensors) {
    c.fail("tensor count", 8, fmt::format("at most {} (this reader's limit)", kMaxTensors),
           fmt::format("{}", n_tensors));
  }
  if (n_kv > c.remaining() / kMinKvBytes) {
    c.fail("metadata count", 16, fmt::format("at most {}", c.remaining() / kMinKvBytes),
           fmt::format("{}", n_kv));
  }
  if (n_tensors > c.remaining() / kMinTensorBytes) {
    c.fail("tensor count", 8, fmt::format("at most {}", c.remaining() / kMinTensorBytes),
           fmt::format("{}", n_tensors));
  }
}

void File::Impl::parse_tensor_info(Cursor& c) {
  const uint64_t at = c.pos();
  TensorInfo t;
  t.name = std::string(c.read_string_view("tensor name"));
  if (t.name.empty() || t.name.size() > kMaxTensorName) {
    c.fail("tensor name", at, fmt::format("1..{} bytes", kMaxTensorName),
           fmt::format("{} bytes", t.name.size()));
  }
  const std::string who = fmt::format("tensor '{}'", t.name);
  if (tensor_index.contains(t.name)) c.fail(who, at, "a unique name", "a duplicate");
  const uint64_t dims_at = c.pos();
  const auto n_dims = c.read<uint32_t>(who + " n_dims");
  if (n_dims == 0 || n_dims > kMaxDims) {
    c.fail(who + " n_dims", dims_at, fmt::format("1..{}", kMaxDims), fmt::format("{}", n_dims));
  }
  uint64_t n_elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t ne_at = c.pos();
    const auto ne = c.read<uint64_t>(who + " shape");
    if (ne == 0) c.fail(fmt::format("{} ne[{}]", who, d), ne_at, "a positive size", "0");
    // ggml keeps element counts in int64.
    if (n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne) {
      c.fail(fmt::format("{} ne[{}]", who, d), ne_at, "an element count that fits int64",
             fmt::format("{} (overflow)", ne));
    }
    n_elements *= ne;
    t.ne.push_back(ne);
  }
  const uint64_t type_at = c.pos();
  const auto type_id = c.read<uint32_t>(who + " type");
  const auto type = type_from_id(type_id);
  if (!type) {
    throw Error(ErrorKind::format, fmt::format("{}: {}: unknown ggml type id {} at byte {}", path,
                                               who, type_id, type_at));
  }
  if (*type == TensorType::MXFP4 && fork_arch) {
    throw Error(
        ErrorKind::unsupported,
        fmt::format("{}: {}: type id 39 at byte {} is bitnet.cpp's TL2 layout in a {} file, "
                    "which this build cannot read",
                    path, who, type_at, architecture));
  }
  t.type = *type;
  if (t.ne[0] % block_elements(t.type) != 0) {
    c.fail(who + " ne[0]", dims_at + 4,
           fmt::format("a multiple of {} for {}", block_elements(t.type), type_name(t.type)),
           fmt::format("{}", t.ne[0]));
  }
  t.nbytes = tensor_nbytes(t.type, n_elements);
  const uint64_t offset_at = c.pos();
  t.offset = c.read<uint64_t>(who + " offset");
  if (t.offset % alignment != 0) {
    c.fail(who + " offset", offset_at, fmt::format("a multiple of the alignment {}", alignment),
           fmt::format("{}", t.offset));
  }
  tensor_index.emplace(t.name, tensors.size());
  tensors.push_back(std::move(t));
}

void File::Impl::validate_tensor_ranges() {
  const uint64_t data_size = bytes.size() - data_offset;
  for (const TensorInfo& t : tensors) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      throw Error(ErrorKind::format,
                  fmt::format("{}: tensor '{}' data at byte {}: expected {} bytes, found {} "
                              "before end of file",
                              path, t.name, data_offset + t.offset, t.nbytes,
                              t.offset > data_size ? 0 : data_size - t.offset));
    }
  }
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(tensors.size());
  for (const TensorInfo& t : tensors)
    by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& prev = *by_offset[i - 1];
    const TensorInfo& cur = *by_offset[i];
    if (prev.offset + prev.nbytes > cur.offset) {
      throw Error(ErrorKind::format,
                  fmt::format("{}: tensor '{}' data at byte {}: expected no overlap, found it "
                              "overlaps tensor '{}' ({} bytes at byte {})",
                              path, cur.name, data_offset + cur.offset, prev.name, prev.nbytes,
                              data_offset + prev.offset));
    }
  }
}

void File::Impl::parse() {
  Cursor c(bytes, path);
  uint64_t n_tensors = 0;
  uint64_t n_kv = 0;
  parse_header(c, n_tensors, n_kv);

  metadata.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t at = c.pos();
    std::string key(c.read_string_view(fmt::format("metadata key #{}", i)));
    if (key.empty()) c.fail(fmt::format("metadata key #{}", i), at, "a non-empty key", "\"\"");
    if (key_index.contains(key))
      c.fail(fmt::format("key '{}'", key), at, "a unique key", "a duplicate");
    const uint64_t type_at = c.pos();
    const auto type_id = c.read<uint32_t>(fmt::format("type of key '{}'", key));
    if (!valid_value_type(type_id)) {
      c.fail(fmt::format("type of key '{}'", key), type_at, "a value type 0..12",
             fmt::format("{}", type_id));
    }
    Value value = read_value(c, static_cast<ValueType>(type_id), key);
    key_index.emplace(key, metadata.size());
    metadata.push_back({std::move(key), std::move(value)});
  }

  if (auto it = key_index.find("general.alignment"); it != key_index.end()) {
    const Value& v = metadata[it->second].value;
    if (v.type() != ValueType::uint32) {
      throw Error(ErrorKind::format,
                  fmt::format("{}: key 'general.alignment': expected uint32, found {}", path,
                              to_string(v.type())));
    }
    const uint64_t a = v.as_uint();
    if (a == 0 || !std::has_single_bit(a)) {
      throw Error(
          ErrorKind::format,
          fmt::format("{}: key 'general.alignment': expected a power of two, found {}", path, a));
    }
    alignment = static_cast<uint32_t>(a);
  }

  if (auto it = key_index.find("general.architecture");
      it != key_index.end() && metadata[it->second].value.type() == ValueType::string) {
    architecture = metadata[it->second].value.as_string();
    fork_arch =
        architecture == "bitnet-b1.58" || architecture == "bitnet-25" || architecture == "bitnet";
  }

  tensors.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i)
    parse_tensor_info(c);

  // The data section starts at the next multiple of the alignment; a file without
  // tensors may end right after its tensor infos.
  const uint64_t end = c.pos();
  data_offset = (end + alignment - 1) / alignment * alignment;
  if (data_offset > bytes.size()) {
    if (!tensors.empty()) {
      c.fail("data section", end, fmt::format("padding to byte {}", data_offset), "end of file");
    }
    data_offset = bytes.size();
  }
  validate_tensor_ranges();
}

File::File(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

File File::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw Error(ErrorKind::io, fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = errno;
    ::close(fd);
    throw Error(ErrorKind::io,
                fmt::format("{}: cannot read: {}", path,
                            S_ISDIR(st.st_mode) ? "is a directory" : std::strerror(err)));
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size > 0) {
    void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw Error(ErrorKind::io, fmt::format("{}: cannot map: {}", path, std::strerror(err)));
    }
    impl->mapping = map;
    impl->bytes = {static_cast<const uint8_t*>(map), size};
    impl->guard = MappingGuard(map, size, path);
  }
  impl->fd = fd;
  impl->parse();
  return File(std::move(impl));
}

File File::parse(std::span<const uint8_t> bytes, std::string name) {
  auto impl = std::make_unique<Impl>();
  impl->path = std::move(name);
  impl->bytes = bytes;
  impl->parse();
  return File(std::move(impl));
}

const std::string& File::path() const {
  return impl_->path;
}
uint32_t File::version() const {
  return impl_->version;
}
uint64_t File::file_size() const {
  return impl_->bytes.size();
}
uint32_t File::alignment() const {
  return impl_->alignment;
}
uint64_t File::data_offset() const {
  return impl_->data_offset;
}
const std::vector<KeyValue>& File::metadata() const {
  return impl_->metadata;
}
const std::vector<TensorInfo>& File::tensors() const {
  return impl_->tensors;
}

const Value* File::find(std::string_view key) const {
  const auto it = impl_->key_index.find(key);
  return it == impl_->key_index.end() ? nullptr : &impl_->metadata[it->second].value;
}

namespace {

// Runs a typed read of `key`, adding the file and key to a type-mismatch error.
template <typename Fn>
decltype(auto) typed(const std::string& path, std::string_view key, Fn&& read) {
  try {
    return read();
  } catch (const Error& e) {
    throw Error(e.kind(), fmt::format("{}: key '{}': {}", path, key, e.what()));
  }
}

const Value& require(const File& file, std::string_view key) {
  const Value* v = file.find(key);
  if (!v) throw Error(ErrorKind::format, fmt::format("{}: missing key '{}'", file.path(), key));
  return *v;
}

} // namespace

uint64_t File::get_uint(std::string_view key) const {
  const Value& v = require(*this, key);
  return typed(path(), key, [&] { return v.as_uint(); });
}

double File::get_float(std::string_view key) const {
  const Value& v = require(*this, key);
  return typed(path(), key, [&] { return v.as_float(); });
}

const std::string& File::get_string(std::string_view key) const {
  const Value& v = require(*this, key);
  return typed(path(), key, [&]() -> const std::string& { return v.as_string(); });
}

std::optional<uint64_t> File::find_uint(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  return typed(path(), key, [&] { return v->as_uint(); });
}

std::optional<double> File::find_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  return typed(path(), key, [&] { return v->as_float(); });
}

std::optional<std::string> File::find_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  return typed(path(), key, [&] { return v->as_string(); });
}

std::optional<bool> File::find_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  return typed(path(), key, [&] { return v->as_bool(); });
}

std::string File::architecture() const {
  return find_string("general.architecture").value_or("");
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  const auto it = impl_->tensor_index.find(name);
  return it == impl_->tensor_index.end() ? nullptr : &impl_->tensors[it->second];
}

std::span<const uint8_t> File::tensor_data(const TensorInfo& tensor) const {
  const uint64_t data_size = impl_->bytes.size() - impl_->data_offset;
  if (tensor.offset > data_size || tensor.nbytes > data_size - tensor.offset) {
    throw Error(ErrorKind::invalid_argument,
                fmt::format("{}: tensor '{}' lies outside the data section", path(), tensor.name));
  }
  return impl_->bytes.subspan(impl_->data_offset + tensor.offset, tensor.nbytes);
}

void File::copy(std::span<const uint8_t> view, uint8_t* out) const {
  const Impl& f = *impl_;
  if (view.data() < f.bytes.data() || view.size() > f.bytes.size() ||
      static_cast<size_t>(view.data() - f.bytes.data()) > f.bytes.size() - view.size()) {
    throw Error(ErrorKind::invalid_argument, fmt::format("{}: copy outside the file", path()));
  }
  if (f.fd < 0) {
    std::memcpy(out, view.data(), view.size());
    return;
  }
  auto offset = static_cast<off_t>(view.data() - f.bytes.data());
  for (size_t done = 0; done < view.size();) {
    const ssize_t n = ::pread(f.fd, out + done, view.size() - done, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw Error(ErrorKind::io, fmt::format("{}: cannot read {} bytes at offset {}: {}", path(),
                                             view.size() - done, offset, std::strerror(errno)));
    }
    if (n == 0) { // the range was inside the file when it was opened (as for the SIGBUS guard)
      throw Error(ErrorKind::format,
                  fmt::format("{}: the file changed or was truncated while in use", path()));
    }
    done += static_cast<size_t>(n);
    offset += n;
  }
}

} // namespace bitnet::gguf
