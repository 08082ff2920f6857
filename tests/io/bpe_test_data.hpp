// tests/io/bpe_test_data.hpp: finding the shared data folder and the tokenizer fixtures.
#pragma once
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace bpe_test {

inline std::filesystem::path data_dir() {
  const char* env = std::getenv("HYENA_DATA_DIR");
  return (env && *env) ? std::filesystem::path(env) : std::filesystem::path(HYENA_DEFAULT_DATA_DIR);
}

// True when `rel` exists under the data folder. Otherwise fails the test when HYENA_REQUIRE_DATA=1
// (CI), else says why the test is skipped.
inline bool have_data(const std::string& rel) {
  if (std::filesystem::exists(data_dir() / rel)) return true;
  const char* req = std::getenv("HYENA_REQUIRE_DATA");
  if (req && std::string(req) == "1") {
    FAIL("data file missing: ", (data_dir() / rel).string(), " (HYENA_REQUIRE_DATA=1)");
  } else {
    MESSAGE("skipped: data file missing: ", (data_dir() / rel).string(), " (set HYENA_DATA_DIR)");
  }
  return false;
}

inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open ", p.string());
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

inline nlohmann::json fixture(const std::string& name) {
  return nlohmann::json::parse(read_bytes(std::filesystem::path(HYENA_TEST_SOURCE_DIR) / "reference" / "fixtures" / name));
}

inline std::string fnv1a64_hex(const std::vector<std::int32_t>& ids) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (std::int32_t id : ids) {
    const auto u = static_cast<std::uint32_t>(id);
    for (int k = 0; k < 4; ++k) {
      h ^= (u >> (8 * k)) & 0xFF;
      h *= 0x100000001B3ull;
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace bpe_test
