// Fuzzes the GPT-2 tokenizer files: encoder.json and vocab.bpe, the input split at the line
// "#vocab.bpe\n". Loaded tokenizers encode and decode a fixed text and the input.
#include <hyena/io/gpt2_tokenizer.hpp>

#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hyena;
  const auto text = fuzz::as_text(data, size);
  const auto [encoder, merges] = fuzz::split2(text, "#vocab.bpe\n");
  const std::string enc = fuzz::write_file("encoder.json", encoder);
  const std::string bpe = fuzz::write_file("vocab.bpe", merges);
  try {
    auto tok = io::load_gpt2_tokenizer(enc, bpe);
    for (std::string_view s : {std::string_view("low lower newest widest <|endoftext|> \xe2\x82\xac"), text.substr(0, 128)}) {
      const auto ids = tok->encode(s);
      for (auto id : ids) FUZZ_CHECK(id >= 0 && id < tok->vocab_size(), "ids are inside the vocabulary");
      (void)tok->decode(ids);
    }
  } catch (const hyena::error&) {
  }
  return 0;
}
