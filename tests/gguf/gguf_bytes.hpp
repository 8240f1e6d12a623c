// Builds GGUF bytes field by field, independently of gguf::Writer, so reader tests control
// every byte (including invalid ones) and know each field's offset.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::gguf::testing {

class Bytes {
public:
  template <typename T> Bytes& put(T v) {
    const std::size_t at = data.size();
    data.resize(at + sizeof(T));
    std::memcpy(data.data() + at, &v, sizeof(T));
    return *this;
  }
  Bytes& str(std::string_view s) {
    put<uint64_t>(s.size());
    data.insert(data.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    const std::string_view magic = "GGUF";
    data.insert(data.end(), magic.begin(), magic.end());
    return put(version).put(n_tensors).put(n_kv);
  }
  Bytes& kv_u32(std::string_view key, uint32_t v) { return str(key).put<uint32_t>(4).put(v); }
  Bytes& kv_str(std::string_view key, std::string_view v) {
    return str(key).put<uint32_t>(8).str(v);
  }
  Bytes& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).put<uint32_t>(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne)
      put(d);
    return put(type).put(offset);
  }
  Bytes& pad(std::size_t alignment = 32) {
    while (data.size() % alignment != 0)
      data.push_back(0);
    return *this;
  }
  Bytes& fill(std::size_t n, uint8_t byte) {
    data.insert(data.end(), n, byte);
    return *this;
  }
  std::size_t size() const { return data.size(); }

  std::vector<uint8_t> data;
};

} // namespace bitnet::gguf::testing
