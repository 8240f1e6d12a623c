// libFuzzer target for the GGUF reader: parse arbitrary bytes, then touch every value and
// every tensor byte so a bad bound anywhere shows up under ASan/UBSan. A file that parses
// also goes through the model checks and the default context's KV cache size (computed, not
// allocated), which must stay within kMaxDefaultCtx positions whatever context_length says.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "bitnet/session.hpp"
#include "gguf/gguf.hpp"
#include "gguf/i2s.hpp"
#include "model/config.hpp"
#include "model/kv_cache.hpp"

namespace {

uint64_t touch(const bitnet::gguf::Value& v) {
  using bitnet::gguf::ValueType;
  switch (v.type()) {
  case ValueType::string:
    return v.as_string().size();
  case ValueType::array: {
    uint64_t sum = static_cast<uint64_t>(v.elem_type());
    for (std::size_t i = 0; i < v.size(); ++i)
      sum += v.elem_type() == ValueType::string ? v.string_at(i).size() : touch(v.at(i));
    return sum;
  }
  case ValueType::boolean:
    return v.as_bool();
  case ValueType::float32:
  case ValueType::float64:
    return v.as_float() > 0;
  default:
    return v.type() == ValueType::int8 || v.type() == ValueType::int16 ||
                   v.type() == ValueType::int32 || v.type() == ValueType::int64
               ? static_cast<uint64_t>(v.as_int())
               : v.as_uint();
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    const auto f = bitnet::gguf::File::parse(std::span(data, size), "fuzz");
    volatile uint64_t sink = f.alignment() + f.data_offset() + f.architecture().size();
    for (const auto& kv : f.metadata())
      sink = sink + touch(kv.value) + (f.find(kv.key) != nullptr);
    for (const auto& t : f.tensors()) {
      const auto bytes = f.tensor_data(t);
      uint64_t sum = 0;
      for (uint8_t b : bytes)
        sum += b;
      sink = sink + sum + (f.find_tensor(t.name) == &t);
      if (t.type == bitnet::gguf::TensorType::I2_S) {
        std::vector<int8_t> w(t.n_elements());
        try {
          sink = sink + static_cast<uint64_t>(bitnet::gguf::unpack_i2s(bytes, w.size(), w) > 0);
        } catch (const bitnet::Error&) {
          // code 3 in random data
        }
      }
    }
    const bitnet::model::Config config = bitnet::model::load_config(f);
    const int64_t n_ctx = std::min<int64_t>(config.n_ctx_train, bitnet::kMaxDefaultCtx);
    const uint64_t kv = bitnet::model::KvCache::bytes_for(config, n_ctx, true);
    if (n_ctx < 1 || kv == 0 || kv > (uint64_t{1} << 48)) __builtin_trap();
    sink = sink + kv;
  } catch (const bitnet::Error&) {
    // rejected input: the expected outcome for most fuzz inputs
  }
  return 0;
}
