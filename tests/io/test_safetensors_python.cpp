// Python interop: files hyena writes are read by Python (`safetensors` when installed,
// else a pure-Python reader) and checked against the formula in the script.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <hyena/io/safetensors.hpp>

#include "safetensors_test_util.hpp"

using namespace hyena;
using namespace hyena::io;

namespace {

bool have_python() { return std::system("python3 --version > /dev/null 2>&1") == 0; }

int run_script(const std::string& file, const std::string& extra = "") {
  std::string cmd = "python3 \"" HYENA_TEST_SOURCE_DIR "/reference/safetensors_roundtrip.py\" \"" + file + "\" " + extra;
  int rc = std::system(cmd.c_str());
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

// The contents safetensors_roundtrip.py expects; `f32_bias` shifts one value to break it.
void write_expected(const std::string& path, float f32_bias = 0) {
  std::vector<float> f32(12), f16(5), bf16(4), empty;
  std::vector<double> f64(6);
  for (int i = 0; i < 12; ++i) f32[i] = i * 0.5f - 1;
  f32[7] += f32_bias;
  for (int i = 0; i < 6; ++i) f64[i] = 1.0 / (i + 1);
  for (int i = 0; i < 5; ++i) f16[i] = (i - 2) * 0.25f;
  for (int i = 0; i < 4; ++i) bf16[i] = static_cast<float>(i + 1);
  float s = 3.5f;
  safetensors_writer w;
  w.add("f32", {3, 4}, f32.data());
  w.add("f64", {2, 3}, f64.data(), dtype::F64);
  w.add("f16", {5}, f16.data(), dtype::F16);
  w.add("bf16", {2, 2}, bf16.data(), dtype::BF16);
  w.add("s", {}, &s);
  w.add("z", {0, 3}, empty.data());
  w.add_metadata("format", "pt");
  w.add_metadata("creator", "hyena");
  w.write(path);
}

}  // namespace

TEST_CASE("safetensors: Python reads what hyena writes") {
  if (!have_python()) {
    MESSAGE("python3 not found: skipping the Python interop check");
    return;
  }
  testing::scratch_dir dir;
  std::string good = dir.file("good.safetensors");
  write_expected(good);
  CHECK(run_script(good) == 0);            // safetensors package if importable
  CHECK(run_script(good, "--pure") == 0);  // the format as the spec describes it

  // The script must be able to fail: one wrong value.
  std::string bad = dir.file("bad.safetensors");
  write_expected(bad, 0.25f);
  CHECK(run_script(bad, "> /dev/null") == 1);
  CHECK(run_script(bad, "--pure > /dev/null") == 1);
}
