// Fuzzes llama2.c checkpoints of every version (legacy, 1 float32, 2 int8): header and body.
// A loaded model must run one forward pass on two tokens without a crash.
#include <hyena/io/llama2c.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hyena;
  const std::string path = fuzz::write_file("model.bin", fuzz::as_text(data, size));
  try {
    const auto h = io::read_llama2c_header(path);
    FUZZ_CHECK(h.file_bytes() == static_cast<index_t>(size), "accepted files have the size the header implies");
    auto m = io::load_llama2c<backend::cpu_ref>(path);
    if (m.parameter_count() <= 200000) {
      tensor<std::int32_t> ids(shape{1, 2});
      ids.data()[0] = 0;
      ids.data()[1] = static_cast<std::int32_t>(m.config().vocab - 1);
      backend::host_context ctx;
      m.reserve(1, 2, models::mode::infer);
      (void)m.forward(ctx, ids.v());
    }
  } catch (const hyena::error&) {
  }
  return 0;
}
