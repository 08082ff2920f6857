// Fuzzes the safetensors reader: header and data. Every accepted file must keep its promises:
// each tensor's bytes lie inside the file and convert without a crash.
#include <hyena/io/safetensors.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hyena;
  const std::string path = fuzz::write_file("x.safetensors", fuzz::as_text(data, size));
  try {
    auto f = io::safetensors_file::open(path);
    std::uint64_t covered = 0;
    for (const auto& name : f.names()) {
      const auto& t = f.info(name);
      const auto raw = f.raw(name);
      FUZZ_CHECK(raw.size() == t.end - t.begin, "raw() size equals the data_offsets span");
      covered += raw.size();
      if (t.shape.size() <= 4 && t.numel() <= (1 << 16)) {
        try {
          auto v = f.load<float>(name);
          FUZZ_CHECK(v.numel() == t.numel(), "load() gives numel values");
        } catch (const hyena::error&) {  // an unreadable dtype
        }
      }
    }
    FUZZ_CHECK(covered <= size, "tensors cover at most the file");
    (void)f.metadata();
  } catch (const hyena::error&) {
  }
  return 0;
}
