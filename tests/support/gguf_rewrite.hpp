// Writes a modified copy of a GGUF file: metadata keys set or replaced, tensors stored with
// another type (zero data) or with their data edited, a different alignment, and a small I8
// tensor written first to shift every other tensor's data by `shift` bytes. The reproducers of
// hostile or unusual files start from a real model this way.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gguf/gguf.hpp"

namespace bitnet::test {

struct GgufEdit {
  std::map<std::string, gguf::Value> set;         // keys to set (replacing any old value)
  std::map<std::string, gguf::TensorType> retype; // tensors to store as this type, zeroed
  // Tensors whose data (same type and shape) is passed through this function.
  std::map<std::string, std::function<void(std::vector<uint8_t>&)>> patch;
  uint32_t alignment = 32;
  uint64_t shift = 0; // bytes of a leading I8 tensor "shift.pad" (0: none)
};

inline void rewrite_gguf(const std::string& in, const std::string& out, const GgufEdit& edit) {
  const gguf::File src = gguf::File::open(in);
  gguf::Writer w(edit.alignment);
  std::map<std::string, gguf::Value> pending = edit.set;
  if (edit.alignment != 32)
    pending.insert_or_assign("general.alignment", gguf::Value::u32(edit.alignment));
  for (const gguf::KeyValue& kv : src.metadata()) {
    const auto it = pending.find(kv.key);
    if (it != pending.end()) {
      w.add_kv(kv.key, it->second);
      pending.erase(it);
    } else if (kv.key != "general.alignment") {
      w.add_kv(kv.key, kv.value);
    }
  }
  for (const auto& [key, value] : pending)
    w.add_kv(key, value);
  if (edit.shift > 0) w.add_tensor("shift.pad", gguf::TensorType::I8, {edit.shift});
  for (const gguf::TensorInfo& t : src.tensors()) {
    const auto it = edit.retype.find(t.name);
    w.add_tensor(t.name, it == edit.retype.end() ? t.type : it->second, t.ne);
  }
  w.write(out, [&](std::size_t, const gguf::TensorInfo& info, gguf::Writer::Sink& sink) {
    const gguf::TensorInfo* t = src.find_tensor(info.name);
    if (t == nullptr || t->type != info.type) {
      sink.write(std::vector<uint8_t>(info.nbytes, 0));
    } else if (const auto p = edit.patch.find(info.name); p != edit.patch.end()) {
      const std::span<const uint8_t> data = src.tensor_data(*t);
      std::vector<uint8_t> bytes(data.begin(), data.end());
      p->second(bytes);
      sink.write(bytes);
    } else {
      sink.write(src.tensor_data(*t));
    }
  });
}

} // namespace bitnet::test
