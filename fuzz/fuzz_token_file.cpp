// Fuzzes our token files (prepare's output): header, checksum, ids. Accepted files give ids below
// their vocab.
#include <hyena/io/token_file.hpp>
#include <vector>

#include "fuzz_util.hpp"

// HYENA_FUZZ_WRITE_SEEDS=<folder>: write seed files with the library's own writer, then exit.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("HYENA_FUZZ_WRITE_SEEDS");
  if (!dir) return 0;
  std::vector<std::int32_t> ids = {0, 1, 2, 255, 7, 7, 100};
  hyena::io::write_token_file(std::string(dir) + "/u16.bin", ids, 256, 9);
  hyena::io::write_token_file(std::string(dir) + "/u32.bin", ids, 70000, 0, hyena::io::token_dtype::uint32);
  hyena::io::write_token_file(std::string(dir) + "/empty.bin", std::vector<std::int32_t>{}, 5);
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hyena;
  const std::string path = fuzz::write_file("tokens.bin", fuzz::as_text(data, size));
  try {
    io::token_file f(path);
    const auto t = f.tokens();
    for (index_t i = 0; i < t.size(); ++i) FUZZ_CHECK(t[i] >= 0 && t[i] < f.vocab(), "ids below the vocab");
    (void)f.bytes_per_token();
  } catch (const hyena::error&) {
  }
  return 0;
}
