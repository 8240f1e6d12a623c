// GPT-2 byte-level alphabet: every byte is written as one printable code point so that BPE
// vocabularies are plain strings (bytes 0x21..0x7E, 0xA1..0xAC, 0xAE..0xFF map to themselves,
// the other 68 bytes to U+0100.. in ascending order).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "bitnet/utf8.hpp"

namespace bitnet::tokenizer {

// The code point that stands for byte b.
uint32_t byte_to_code_point(uint8_t b);
// The byte a code point stands for, or -1 when it is not in the alphabet.
int code_point_to_byte(uint32_t cp);

// Decodes the well-formed UTF-8 sequence at s[pos] and advances pos; an ill-formed byte is
// returned as itself (as a Latin-1 code point) and consumed alone.
uint32_t next_code_point(std::string_view s, std::size_t& pos);

// Byte-level form of raw bytes (each byte → its code point, UTF-8 encoded), into out.
void bytes_to_symbols(std::string_view bytes, std::string& out);
// Raw bytes of a byte-level string; code points outside the alphabet are copied as UTF-8.
std::string symbols_to_bytes(std::string_view symbols);

} // namespace bitnet::tokenizer
