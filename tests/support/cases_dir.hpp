// cases_dir.hpp: the shared real-world inputs of ../shared/cases (see its README), found beside
// the data folder: <HYENA_DATA_DIR>/../cases, HYENA_DATA_DIR defaulting to ../shared/data.
// Never copied into the repository.
#pragma once
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace hyena::testing {

inline std::filesystem::path shared_data_dir() {
  const char* env = std::getenv("HYENA_DATA_DIR");
  if (env && *env) return env;
#ifdef HYENA_DEFAULT_DATA_DIR
  return HYENA_DEFAULT_DATA_DIR;
#else
  return "../shared/data";
#endif
}

// The folder cases/<sub>, or "" when it is missing: then the test is skipped with a message, or
// fails when HYENA_REQUIRE_DATA=1 (CI).
inline std::string cases_dir(const std::string& sub) {
  const std::filesystem::path d = shared_data_dir() / ".." / "cases" / sub;
  if (std::filesystem::is_directory(d)) return d.lexically_normal().string();
  const char* req = std::getenv("HYENA_REQUIRE_DATA");
  if (req && std::string(req) == "1") FAIL("shared cases folder missing: ", d.string(), " (HYENA_REQUIRE_DATA=1)");
  MESSAGE("skipped: shared cases folder missing: ", d.string(), " (set HYENA_DATA_DIR)");
  return "";
}

}  // namespace hyena::testing
