// fuzz_util.hpp: what every libFuzzer harness shares.
//
// The parsers take file paths (they memory-map), so each input is written to a scratch file in
// a per-process folder under $TMPDIR (default /tmp) first. A hyena::error is the expected answer
// to bad input and is swallowed; anything else - another exception type, a crash, a sanitizer
// report, a leak, a failed FUZZ_CHECK - is a finding.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <hyena/config.hpp>

namespace hyena::fuzz {

inline const std::filesystem::path& scratch_folder() {
  static const std::filesystem::path dir = [] {
    const char* t = std::getenv("TMPDIR");
    auto d = std::filesystem::path(t && *t ? t : "/tmp") / ("hyena_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// Writes `bytes` to scratch file `name` (replaced each call) and returns its path.
inline std::string write_file(const std::string& name, std::string_view bytes) {
  const std::string path = (scratch_folder() / name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) std::abort();
  return path;
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits an input into two parts at the first occurrence of `sep` (the second part empty if none).
inline std::pair<std::string_view, std::string_view> split2(std::string_view s, std::string_view sep) {
  const auto at = s.find(sep);
  if (at == std::string_view::npos) return {s, {}};
  return {s.substr(0, at), s.substr(at + sep.size())};
}

// The shared data folder (HYENA_DATA_DIR, else the build's default), for harnesses that need a
// real tokenizer; aborts with a message when it is missing.
inline std::string data_file(const std::string& rel) {
  const char* env = std::getenv("HYENA_DATA_DIR");
  std::filesystem::path d = env && *env ? env : HYENA_DEFAULT_DATA_DIR;
  const auto p = d / rel;
  if (!std::filesystem::exists(p)) {
    std::fprintf(stderr, "fuzz: data file %s missing (set HYENA_DATA_DIR)\n", p.string().c_str());
    std::abort();
  }
  return p.string();
}

}  // namespace hyena::fuzz

// A property the harness checks; a violation aborts (a libFuzzer crash with this message).
#define FUZZ_CHECK(cond, what)                                                     \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", what, __FILE__, __LINE__); \
      std::abort();                                                                \
    }                                                                              \
  } while (0)
