// JSON in the tests: the fixtures under tests/data and the CLI's JSON output, read with
// nlohmann/json (as the library and the CLI use it).
#pragma once

#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bitnet::test {

using Json = nlohmann::json;

inline Json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return Json::parse(in);
}

inline std::vector<int32_t> ids_of(const Json& array) {
  return array.get<std::vector<int32_t>>();
}

} // namespace bitnet::test
