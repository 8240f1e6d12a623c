// UTF-8 validation (bitnet/utf8.hpp) against the Unicode standard's well-formed sequences.
#include <gtest/gtest.h>

#include <string_view>

#include "bitnet/utf8.hpp"

TEST(Utf8, SequenceLengths) {
  EXPECT_EQ(bitnet::utf8_sequence_length("a", 0), 1u);
  EXPECT_EQ(bitnet::utf8_sequence_length("é", 0), 2u);
  EXPECT_EQ(bitnet::utf8_sequence_length("中", 0), 3u);
  EXPECT_EQ(bitnet::utf8_sequence_length("😀", 0), 4u);
  EXPECT_EQ(bitnet::utf8_sequence_length("\xC0\x80", 0), 0u);         // overlong
  EXPECT_EQ(bitnet::utf8_sequence_length("\xED\xA0\x80", 0), 0u);     // surrogate
  EXPECT_EQ(bitnet::utf8_sequence_length("\xF4\x90\x80\x80", 0), 0u); // > U+10FFFF
  EXPECT_EQ(bitnet::utf8_sequence_length("\xE4\xB8", 0), 0u);         // truncated
  EXPECT_EQ(bitnet::utf8_find_invalid("ok é \xff"), 6u);
  EXPECT_EQ(bitnet::utf8_find_invalid("fine"), std::string_view::npos);
}
