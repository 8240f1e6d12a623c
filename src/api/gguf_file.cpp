// include/bitnet/gguf.hpp: the GGUF reader's view of a file, and the model loader's verdict.
#include "bitnet/gguf.hpp"

#include "gguf/gguf.hpp"
#include "model/config.hpp"
#include "util/access.hpp"

namespace bitnet {

static_assert(static_cast<uint32_t>(GgufType::float64) ==
                  static_cast<uint32_t>(gguf::ValueType::float64),
              "GgufType numbers the types as the file format (and gguf::ValueType) do");

namespace {

GgufType public_type(gguf::ValueType type) {
  return static_cast<GgufType>(type);
}

} // namespace

const char* to_string(GgufType type) noexcept {
  return gguf::to_string(static_cast<gguf::ValueType>(type));
}

GgufType GgufValue::type() const {
  return public_type(value_->type());
}
GgufType GgufValue::elem_type() const {
  return public_type(value_->elem_type());
}
std::size_t GgufValue::size() const {
  return value_->type() == gguf::ValueType::array ? value_->size() : 0;
}
GgufValue GgufValue::operator[](std::size_t i) const {
  return GgufValue(std::make_shared<const gguf::Value>(value_->at(i)));
}
uint64_t GgufValue::as_uint() const {
  return value_->as_uint();
}
int64_t GgufValue::as_int() const {
  return value_->as_int();
}
double GgufValue::as_float() const {
  return value_->as_float();
}
bool GgufValue::as_bool() const {
  return value_->as_bool();
}
const std::string& GgufValue::as_string() const {
  return value_->as_string();
}

struct GgufFile::Impl {
  gguf::File file;
  std::vector<GgufTensor> tensors;
};

GgufFile::GgufFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

GgufFile GgufFile::open(const std::string& path) {
  auto impl = std::make_unique<Impl>(Impl{gguf::File::open(path), {}});
  const gguf::File& f = impl->file;
  for (const gguf::TensorInfo& t : f.tensors()) {
    impl->tensors.push_back({t.name, gguf::type_name(t.type), t.ne, t.n_elements(), t.nbytes,
                             f.data_offset() + t.offset});
  }
  return GgufFile(std::move(impl));
}

const std::string& GgufFile::path() const {
  return impl_->file.path();
}
uint64_t GgufFile::file_size() const {
  return impl_->file.file_size();
}
uint32_t GgufFile::version() const {
  return impl_->file.version();
}
uint32_t GgufFile::alignment() const {
  return impl_->file.alignment();
}
uint64_t GgufFile::data_offset() const {
  return impl_->file.data_offset();
}

std::vector<GgufEntry> GgufFile::metadata() const {
  std::vector<GgufEntry> out;
  for (const gguf::KeyValue& kv : impl_->file.metadata())
    out.push_back({kv.key, detail::Access::make<GgufValue>(kv.value)});
  return out;
}

std::optional<GgufValue> GgufFile::find(std::string_view key) const {
  const gguf::Value* v = impl_->file.find(key);
  if (v == nullptr) return std::nullopt;
  return detail::Access::make<GgufValue>(*v);
}

std::string GgufFile::architecture() const {
  return impl_->file.architecture();
}

const std::vector<GgufTensor>& GgufFile::tensors() const {
  return impl_->tensors;
}

std::optional<std::string> GgufFile::cannot_run_reason() const {
  try {
    model::load_config(impl_->file);
    return std::nullopt;
  } catch (const Error& e) {
    return std::string(e.what());
  }
}

} // namespace bitnet
