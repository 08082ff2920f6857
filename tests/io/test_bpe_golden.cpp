// Byte-level BPE tokenizers against Hugging Face `tokenizers` (tests/reference/tokenizer_golden.py):
// GPT-NeoX-20B's tokenizer.json and GPT-2's encoder.json + vocab.bpe, on tricky strings and on the
// whole WikiText-2 raw test split.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include <hyena/io/gpt2_tokenizer.hpp>
#include <hyena/io/hf_tokenizer.hpp>

#include "bpe_test_data.hpp"

using namespace hyena;

namespace {
const char* neox_file = "gpt-neox-20b-tokenizer/20B_tokenizer.json";

std::unique_ptr<io::bpe_tokenizer> load(const std::string& which) {
  if (which == "neox") return io::load_hf_tokenizer((bpe_test::data_dir() / neox_file).string());
  return io::load_gpt2_tokenizer(bpe_test::data_dir() / "gpt2-bpe");
}
}  // namespace

TEST_CASE("bpe golden: tricky strings give HF's ids and decode back") {
  if (!bpe_test::have_data(neox_file) || !bpe_test::have_data("gpt2-bpe/vocab.bpe")) return;
  const auto fx = bpe_test::fixture("tokenizer_tricky.json");
  for (const std::string which : {"neox", "gpt2"}) {
    const auto tok = load(which);
    for (const auto& c : fx["cases"]) {
      const std::string text = c["text"].get<std::string>();
      const auto want = c[which].get<std::vector<std::int32_t>>();
      const auto got = tok->encode(text);
      CHECK_MESSAGE(got == want, which, ": ", text);
      CHECK_MESSAGE(tok->decode(got) == c[which + "_decoded"].get<std::string>(), which, ": ", text);
    }
  }
}

TEST_CASE("bpe golden: vocabulary sizes, names and special ids") {
  if (!bpe_test::have_data(neox_file) || !bpe_test::have_data("gpt2-bpe/vocab.bpe")) return;
  const auto neox = load("neox");
  CHECK(neox->vocab_size() == 50277);
  CHECK(neox->eos_id() == 0);
  CHECK(neox->bos_id() == 0);
  CHECK(neox->token_to_id("<|padding|>") == 1);
  CHECK(neox->options().nfc);
  const auto gpt2 = load("gpt2");
  CHECK(gpt2->vocab_size() == 50257);
  CHECK(gpt2->eos_id() == 50256);
  CHECK(gpt2->name() == "gpt2");
  // Special tokens count no bytes; everything else counts its UTF-8 bytes.
  const auto ids = gpt2->encode("ab<|endoftext|>\xc3\xa9");
  CHECK(gpt2->byte_length(ids) == 4);
  CHECK(gpt2->decode(ids) == "ab<|endoftext|>\xc3\xa9");
  const std::vector<std::int32_t> bad{50257};
  CHECK_THROWS_AS(gpt2->decode(bad), hyena::error);
}

TEST_CASE("bpe golden: WikiText-2 raw test split matches HF id for id") {
  const char* wiki = "wikitext-2-raw/wiki.test.raw";
  if (!bpe_test::have_data(neox_file) || !bpe_test::have_data("gpt2-bpe/vocab.bpe") || !bpe_test::have_data(wiki))
    return;
  const auto fx = bpe_test::fixture("tokenizer_wikitext_test.json");
  const std::string text = bpe_test::read_bytes(bpe_test::data_dir() / wiki);
  REQUIRE(text.size() == fx["bytes"].get<std::size_t>());
  for (const std::string which : {"neox", "gpt2"}) {
    const auto tok = load(which);
    const auto ids = tok->encode(text);
    const auto& want = fx[which];
    CHECK_MESSAGE(ids.size() == want["count"].get<std::size_t>(), which);
    const auto first = want["first"].get<std::vector<std::int32_t>>();
    REQUIRE(ids.size() >= first.size());
    for (std::size_t i = 0; i < first.size(); ++i) {
      if (ids[i] != first[i]) {
        FAIL_CHECK(which, ": first difference at id ", i, ": got ", ids[i], ", want ", first[i]);
        break;
      }
    }
    CHECK_MESSAGE(bpe_test::fnv1a64_hex(ids) == want["fnv1a64"].get<std::string>(), which);
    CHECK(tok->decode(ids) == text);  // the text is NFC already, so the round trip is exact
    CHECK(tok->byte_length(ids) == text.size());
  }
}
