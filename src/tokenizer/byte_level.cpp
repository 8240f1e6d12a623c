#include "tokenizer/byte_level.hpp"

#include "bitnet/utf8.hpp"

namespace bitnet::tokenizer {

namespace {

bool maps_to_itself(uint32_t b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 324> to_byte{}; // every mapped code point is < 256 + 68
  Tables() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      to_cp[b] = maps_to_itself(b) ? b : next++;
      to_byte[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

} // namespace

uint32_t byte_to_code_point(uint8_t b) {
  return tables().to_cp[b];
}

int code_point_to_byte(uint32_t cp) {
  return cp < tables().to_byte.size() ? tables().to_byte[cp] : -1;
}

uint32_t next_code_point(std::string_view s, std::size_t& pos) {
  const std::size_t n = utf8_sequence_length(s, pos);
  const auto byte = [&](std::size_t i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(s[pos + i]));
  };
  uint32_t cp = 0;
  switch (n) {
  case 1:
    cp = byte(0);
    break;
  case 2:
    cp = ((byte(0) & 0x1F) << 6) | (byte(1) & 0x3F);
    break;
  case 3:
    cp = ((byte(0) & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F);
    break;
  case 4:
    cp = ((byte(0) & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) |
         (byte(3) & 0x3F);
    break;
  default:
    cp = byte(0);
    break;
  }
  pos += n == 0 ? 1 : n;
  return cp;
}

void bytes_to_symbols(std::string_view bytes, std::string& out) {
  out.clear();
  for (const char c : bytes)
    append_utf8(out, byte_to_code_point(static_cast<uint8_t>(c)));
}

std::string symbols_to_bytes(std::string_view symbols) {
  std::string out;
  out.reserve(symbols.size());
  for (std::size_t pos = 0; pos < symbols.size();) {
    const std::size_t start = pos;
    const uint32_t cp = next_code_point(symbols, pos);
    const int b = code_point_to_byte(cp);
    if (b >= 0) {
      out += static_cast<char>(b);
    } else {
      out.append(symbols.substr(start, pos - start));
    }
  }
  return out;
}

} // namespace bitnet::tokenizer
