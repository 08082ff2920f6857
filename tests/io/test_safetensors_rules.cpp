// The safetensors rule set against Python's `safetensors` reader: every case in
// tests/reference/fixtures/safetensors_rules.json (written by tests/reference/safetensors_rules.py
// with the oracle's verdict) must get the same verdict from hyena, except where the fixture marks
// hyena as deliberately stricter (the written spec); rejections name the file and the problem.
// Also the real-world files in ../shared/cases/safetensors.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <hyena/io/safetensors.hpp>
#include <nlohmann/json.hpp>

#include "support/cases_dir.hpp"
#include "safetensors_test_util.hpp"

using namespace hyena;
using hyena::testing::scratch_dir;

namespace {

std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// "" when hyena accepts the file, else its message.
std::string open_error(const std::string& path) {
  try {
    auto f = io::safetensors_file::open(path);
    for (const auto& n : f.names()) (void)f.raw(n);
  } catch (const hyena::error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("safetensors rules: hyena's verdict equals the Python reader's on every generated case") {
  std::ifstream in(HYENA_TEST_SOURCE_DIR "/reference/fixtures/safetensors_rules.json");
  REQUIRE(in.good());
  const auto j = nlohmann::json::parse(in);
  const auto& cases = j.at("cases");
  REQUIRE(cases.size() >= 80);
  scratch_dir dir;
  int accepted = 0, rejected = 0, stricter = 0;
  for (const auto& c : cases) {
    const std::string name = c.at("name");
    const std::string path = dir.file(name + ".safetensors");
    testing::write_bytes(path, from_hex(c.at("hex")));
    const std::string err = open_error(path);
    const bool want = c.at("hyena_accept");
    INFO("case ", name, " (", c.at("why").get<std::string>(), "): hyena says '", err, "', oracle says '",
         c.at("oracle").get<std::string>(), "'");
    CHECK((err.empty()) == want);
    if (!c.at("stricter").get<std::string>().empty()) {
      ++stricter;
      CHECK(c.at("accept").get<bool>());  // stricter only where the oracle accepts
    } else {
      CHECK(want == c.at("accept").get<bool>());
    }
    if (!err.empty()) {
      CHECK(err.find(path) != std::string::npos);  // names the file
      CHECK(err.find(c.at("keyword").get<std::string>()) != std::string::npos);
    }
    (err.empty() ? accepted : rejected)++;
  }
  MESSAGE(accepted, " accepted, ", rejected, " rejected (", stricter, " by the spec where the oracle accepts), oracle ",
          j.at("oracle").get<std::string>());
  CHECK(accepted >= 10);
}

TEST_CASE("safetensors rules: the real-world malformed files are rejected by name") {
  const std::string dir = testing::cases_dir("safetensors");
  if (dir.empty()) return;
  const std::pair<const char*, const char*> files[] = {
      {"duplicate-key.safetensors", "duplicate key"},
      {"gap-between-tensors.safetensors", "gap"},
      {"trailing-bytes.safetensors", "trailing bytes"},
      {"nul-padded-header.safetensors", "header padding: byte 0x00"},
  };
  for (const auto& entry : files) {
    const auto& file = entry.first;  // not a structured binding: INFO captures it
    const auto& keyword = entry.second;
    const std::string path = dir + "/" + file;
    REQUIRE(std::filesystem::exists(path));
    const std::string err = open_error(path);
    INFO(file, ": ", err);
    CHECK(err.find(keyword) != std::string::npos);
    CHECK(err.find(path) != std::string::npos);
  }
}
