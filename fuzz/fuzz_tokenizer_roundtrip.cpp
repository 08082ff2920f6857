// The tokenizers on arbitrary bytes: no crash, ids inside the vocabulary, and the round trips the
// formats promise: decode(encode(x)) == x for the byte tokenizer, for GPT-2's byte-level BPE (any
// bytes, invalid UTF-8 included: hyena keeps them) and for llama2.c's SentencePiece BPE with byte
// fallback (tok512); for GPT-NeoX-20B (NFC normaliser) decode(encode(x)) == NFC(x), which is x
// itself when x is ASCII, and NeoX refuses (hyena::error) only text whose invalid UTF-8 has a byte
// its vocabulary lacks. The real tokenizers come from the shared data folder (HYENA_DATA_DIR).
#include <hyena/io/byte_tokenizer.hpp>
#include <hyena/io/gpt2_tokenizer.hpp>
#include <hyena/io/hf_tokenizer.hpp>
#include <hyena/io/llama2c_tokenizer.hpp>
#include <hyena/io/nfc.hpp>
#include <memory>

#include "fuzz_util.hpp"

namespace {
struct tokenizers {
  hyena::io::byte_tokenizer bytes;
  std::unique_ptr<hyena::io::tokenizer> gpt2 = hyena::io::load_gpt2_tokenizer(
      hyena::fuzz::data_file("gpt2-bpe/encoder.json"), hyena::fuzz::data_file("gpt2-bpe/vocab.bpe"));
  std::unique_ptr<hyena::io::tokenizer> neox =
      hyena::io::load_hf_tokenizer(hyena::fuzz::data_file("gpt-neox-20b-tokenizer/20B_tokenizer.json"));
  hyena::io::llama2c_tokenizer tok512{hyena::fuzz::data_file("stories260k/tok512.bin"), 512};
};
const tokenizers& all() {
  static const tokenizers t;
  return t;
}
void in_vocab(const std::vector<std::int32_t>& ids, const hyena::io::tokenizer& t) {
  for (auto id : ids) FUZZ_CHECK(id >= 0 && id < t.vocab_size(), "ids are inside the vocabulary");
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)all();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hyena;
  const auto& t = all();
  const std::string x(fuzz::as_text(data, size));
  const auto b = t.bytes.encode(x);
  FUZZ_CHECK(t.bytes.decode(b) == x, "byte tokenizer round trip");
  const auto g = t.gpt2->encode(x);
  in_vocab(g, *t.gpt2);
  FUZZ_CHECK(t.gpt2->decode(g) == x, "GPT-2 BPE round trip");
  const auto s = t.tok512.encode(x);
  in_vocab(s, t.tok512);
  FUZZ_CHECK(t.tok512.decode(s) == x, "llama2.c tok512 round trip");
  std::vector<std::int32_t> n;
  try {
    n = t.neox->encode(x);
  } catch (const hyena::error&) {  // an invalid UTF-8 byte the NeoX vocabulary has no token for
    bool invalid = false;
    for (std::size_t i = 0; i < x.size(); i += io::utf8::decode(x, i).len)
      invalid = invalid || io::utf8::decode(x, i).cp == io::utf8::invalid;
    FUZZ_CHECK(invalid, "GPT-NeoX refuses only text with invalid UTF-8");
    return 0;
  }
  in_vocab(n, *t.neox);
  const std::string back = t.neox->decode(n);
  bool ascii = true;
  for (unsigned char c : x) ascii = ascii && c < 128;
  if (ascii) FUZZ_CHECK(back == x, "GPT-NeoX round trip on ASCII");
  // Whatever the input, decoding what was encoded and encoding again is stable.
  FUZZ_CHECK(t.neox->encode(back) == n, "GPT-NeoX: encode(decode(encode(x))) == encode(x)");
  return 0;
}
