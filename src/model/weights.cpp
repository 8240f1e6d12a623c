#include "model/weights.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace bitnet::model {

namespace {

const gguf::TensorInfo& tensor(const gguf::File& file, const std::string& name) {
  const gguf::TensorInfo* t = file.find_tensor(name);
  if (!t) throw Error(ErrorKind::format, fmt::format("tensor {} is missing", name));
  return *t;
}

// The tensor's data, or an aligned copy when it is not aligned to `align` bytes.
const uint8_t* aligned_data(const gguf::File& file, const gguf::TensorInfo& t, size_t align,
                            Weights& w) {
  const auto data = file.tensor_data(t);
  if (reinterpret_cast<uintptr_t>(data.data()) % align == 0) return data.data();
  spdlog::debug("tensor {}: data not {}-byte aligned (general.alignment {}): reading a copy ({} "
                "bytes)",
                t.name, align, file.alignment(), data.size());
  return w.copies.emplace_back(data.begin(), data.end()).data();
}

const float* f32_view(const gguf::File& file, const std::string& name, Weights& w) {
  return reinterpret_cast<const float*>(aligned_data(file, tensor(file, name), alignof(float), w));
}

I2sMatrix i2s_view(const gguf::File& file, const std::string& name) {
  const gguf::TensorInfo& t = tensor(file, name);
  const auto data = file.tensor_data(t);
  I2sMatrix m;
  m.k = static_cast<int64_t>(t.ne[0]);
  m.rows = static_cast<int64_t>(t.ne[1]);
  const uint64_t packed = static_cast<uint64_t>(m.k) * static_cast<uint64_t>(m.rows) / 4;
  if (data.size() < packed + sizeof(float))
    throw Error(ErrorKind::format, fmt::format("tensor {} is truncated", name));
  m.data = data.data();
  std::memcpy(&m.scale, data.data() + packed, sizeof(float));
  return m;
}

// F16 rows are read as uint16_t; Q8_0 blocks through memcpy, at any address.
DenseMatrix dense_view(const gguf::File& file, const std::string& name, Weights& w) {
  const gguf::TensorInfo& t = tensor(file, name);
  DenseMatrix m;
  m.data = t.type == gguf::TensorType::F16 ? aligned_data(file, t, alignof(uint16_t), w)
                                           : file.tensor_data(t).data();
  m.type = t.type;
  m.k = static_cast<int64_t>(t.ne[0]);
  m.rows = static_cast<int64_t>(t.ne[1]);
  m.row_bytes = gguf::tensor_nbytes(t.type, t.ne[0]);
  return m;
}

uint64_t i2s_bytes(const I2sMatrix& m) {
  return static_cast<uint64_t>(m.k) * static_cast<uint64_t>(m.rows) / 4;
}

// Pointers to a layer's I2_S matrices (const or not, as the layer is).
template <class Layer> auto ternary_of(Layer& l) {
  return std::array{&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down};
}

// Where each copy starts: a cache line, as in the file (general.alignment 32 by default).
uint64_t line_padded(uint64_t bytes) {
  return (bytes + 63) / 64 * 64;
}

// Copies every I2_S matrix's codes into w.ternary and points its view there.
void copy_ternary(const gguf::File& file, Weights& w) {
  uint64_t total = 0;
  for (LayerWeights& l : w.layers)
    for (const I2sMatrix* m : ternary_of(l))
      total += line_padded(i2s_bytes(*m));
  w.ternary = ZeroedPages(total);
  auto* dst = static_cast<uint8_t*>(w.ternary.data());
  for (LayerWeights& l : w.layers)
    for (I2sMatrix* m : ternary_of(l)) {
      file.copy({m->data, i2s_bytes(*m)}, dst);
      m->data = dst;
      dst += line_padded(i2s_bytes(*m));
    }
}

} // namespace

uint64_t Weights::bytes_per_token() const {
  uint64_t total = output.row_bytes * static_cast<uint64_t>(output.rows);
  for (const LayerWeights& l : layers)
    for (const I2sMatrix* m : ternary_of(l))
      total += i2s_bytes(*m);
  return total;
}

void Weights::read_rows(const DenseMatrix& m, int64_t first, int64_t count, uint8_t* dst) const {
  const std::span<const uint8_t> rows(m.data + static_cast<uint64_t>(first) * m.row_bytes,
                                      static_cast<uint64_t>(count) * m.row_bytes);
  const bool copied = std::any_of(copies.begin(), copies.end(), [&](const std::vector<uint8_t>& c) {
    return c.data() == m.data;
  });
  if (file && !copied)
    file->copy(rows, dst);
  else
    std::memcpy(dst, rows.data(), rows.size());
}

Weights bind_weights(const gguf::File& file, const Config& config) {
  Weights w;
  w.token_embd = dense_view(file, "token_embd.weight", w);
  w.output = config.tied_output ? w.token_embd : dense_view(file, "output.weight", w);
  w.output_norm = f32_view(file, "output_norm.weight", w);
  w.layers.resize(static_cast<size_t>(config.n_layer));
  for (int64_t il = 0; il < config.n_layer; ++il) {
    const auto name = [&](const char* t) { return fmt::format("blk.{}.{}.weight", il, t); };
    LayerWeights& l = w.layers[static_cast<size_t>(il)];
    l.attn_norm = f32_view(file, name("attn_norm"), w);
    l.ffn_norm = f32_view(file, name("ffn_norm"), w);
    if (config.has_sub_norms) {
      l.attn_sub_norm = f32_view(file, name("attn_sub_norm"), w);
      l.ffn_sub_norm = f32_view(file, name("ffn_sub_norm"), w);
    }
    l.wq = i2s_view(file, name("attn_q"));
    l.wk = i2s_view(file, name("attn_k"));
    l.wv = i2s_view(file, name("attn_v"));
    l.wo = i2s_view(file, name("attn_output"));
    l.w_gate = i2s_view(file, name("ffn_gate"));
    l.w_up = i2s_view(file, name("ffn_up"));
    l.w_down = i2s_view(file, name("ffn_down"));
  }
  copy_ternary(file, w);
  return w;
}

} // namespace bitnet::model
