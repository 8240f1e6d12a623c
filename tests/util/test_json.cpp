#include <gtest/gtest.h>

#include <string>

#include "bitnet/error.hpp"
#include "util/json.hpp"
#include "util/utf8.hpp"

using bitnet::Error;
namespace json = bitnet::json;

TEST(Json, ParsesAllValueKinds) {
  const auto v = json::parse(R"( {"a": [1, -2, 3.5, 1e3, true, false, null], "b": {"c": "x\ty"}} )");
  const auto& a = v.at("a").as_array();
  ASSERT_EQ(a.size(), 7u);
  EXPECT_EQ(a[0].as_int(), 1);
  EXPECT_EQ(a[1].as_int(), -2);
  EXPECT_DOUBLE_EQ(a[2].as_double(), 3.5);
  EXPECT_EQ(a[3].as_int(), 1000); // integral double reads as int
  EXPECT_TRUE(a[4].as_bool());
  EXPECT_FALSE(a[5].as_bool());
  EXPECT_TRUE(a[6].is_null());
  EXPECT_EQ(v.at("b").at("c").as_string(), "x\ty");
  EXPECT_EQ(v.find("missing"), nullptr);
  EXPECT_THROW(v.at("missing"), Error);
  EXPECT_THROW(a[2].as_int(), Error);
  EXPECT_THROW(a[0].as_string(), Error);
}

TEST(Json, DecodesUnicodeEscapesAndSurrogatePairs) {
  EXPECT_EQ(json::parse(R"("\u00e9\u4e2d\ud83d\ude00")").as_string(), "é中😀");
  EXPECT_EQ(json::parse("\"é中😀\"").as_string(), "é中😀");
  EXPECT_THROW(json::parse(R"("\ud83d")"), Error);
  EXPECT_THROW(json::parse(R"("\ude00")"), Error);
}

TEST(Json, RejectsMalformedInput) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "\"abc", "[1] x",
                          "\"\x01\"", "\"\xC3\"", "\"\xED\xA0\x80\"", "{\"a\":1,}", "nul"}) {
    EXPECT_THROW(json::parse(bad), Error) << bad;
  }
  EXPECT_THROW(json::parse(std::string(600, '[') + std::string(600, ']')), Error);
}

TEST(Json, RoundTripsThroughDump) {
  json::Value v;
  v.set("name", "q\"uote\\\n");
  v.set("n", int64_t{-42});
  v.set("x", 0.1);
  v.set("list", json::Array{1, "two", nullptr, true});
  v.set("n", 7); // replaces, keeps position
  const std::string compact = json::dump(v);
  EXPECT_EQ(compact, R"({"name":"q\"uote\\\n","n":7,"x":0.1,"list":[1,"two",null,true]})");
  EXPECT_EQ(json::parse(compact), v);
  EXPECT_EQ(json::parse(json::dump(v, 2)), v);
}

TEST(Json, QuoteEscapesControlsAndReplacesInvalidUtf8) {
  EXPECT_EQ(json::quote(std::string("a\x01", 2)), "\"a\\u0001\"");
  EXPECT_EQ(json::quote("\xff"), "\"\xEF\xBF\xBD\"");
  EXPECT_EQ(json::quote("é"), "\"é\"");
}

TEST(Utf8, SequenceLengths) {
  EXPECT_EQ(bitnet::utf8_sequence_length("a", 0), 1u);
  EXPECT_EQ(bitnet::utf8_sequence_length("é", 0), 2u);
  EXPECT_EQ(bitnet::utf8_sequence_length("中", 0), 3u);
  EXPECT_EQ(bitnet::utf8_sequence_length("😀", 0), 4u);
  EXPECT_EQ(bitnet::utf8_sequence_length("\xC0\x80", 0), 0u);     // overlong
  EXPECT_EQ(bitnet::utf8_sequence_length("\xED\xA0\x80", 0), 0u); // surrogate
  EXPECT_EQ(bitnet::utf8_sequence_length("\xF4\x90\x80\x80", 0), 0u); // > U+10FFFF
  EXPECT_EQ(bitnet::utf8_sequence_length("\xE4\xB8", 0), 0u);     // truncated
  EXPECT_EQ(bitnet::utf8_find_invalid("ok é \xff"), 6u);
  EXPECT_EQ(bitnet::utf8_find_invalid("fine"), std::string_view::npos);
}
