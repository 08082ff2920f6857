// Fuzzes tokenizer.json (Hugging Face tokenizers' format, byte-level BPE): load, then encode and
// decode a fixed text and the input itself. decode(encode(x)) == x for every tokenizer without a
// normaliser (byte-level BPE keeps every byte), and == NFC(x)'s bytes otherwise is not checked.
#include <hyena/io/hf_tokenizer.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hyena;
  const auto text = fuzz::as_text(data, size);
  const std::string path = fuzz::write_file("tokenizer.json", text);
  try {
    auto tok = io::load_hf_tokenizer(path);
    for (std::string_view s : {std::string_view("Hello world, it's 2024!\n\xc3\xa9\xf0\x9f\x98\x80 \xff"),
                               text.substr(0, 256)}) {
      const auto ids = tok->encode(s);
      for (auto id : ids) FUZZ_CHECK(id >= 0 && id < tok->vocab_size(), "ids are inside the vocabulary");
      const std::string back = tok->decode(ids);
      FUZZ_CHECK(tok->byte_length(ids) <= back.size(), "byte_length (special tokens left out) <= decoded size");
    }
  } catch (const hyena::error&) {
  }
  return 0;
}
