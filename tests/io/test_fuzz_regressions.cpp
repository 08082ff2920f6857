// Inputs the libFuzzer harnesses (fuzz/, docs/reliability.md) found, each a regression test: the
// harness's finding, what was wrong, and the behaviour now required.
#include <doctest/doctest.h>

#include <hyena/io/gpt2_tokenizer.hpp>
#include <hyena/io/hf_tokenizer.hpp>
#include <hyena/io/llama2c_tokenizer.hpp>
#include <hyena/io/safetensors.hpp>
#include <hyena/models/config_json.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "bpe_test_data.hpp"
#include "io/safetensors_test_util.hpp"

using namespace hyena;

// fuzz_tokenizer_roundtrip: "def f(x:\n  )n x *j 2  # square\n\xf6\n\n" lost its 0xF6 byte in the
// GPT-NeoX-20B tokenizer: its vocabulary has no token for bytes that valid UTF-8 never holds
// (0xC0, 0xC1, 0xF5..0xFF) and the BPE model skipped them silently, so decode(encode(x)) != x.
TEST_CASE("fuzz regression: an invalid UTF-8 byte without a token is an error, not a silent drop") {
  const std::string neox_file = "gpt-neox-20b-tokenizer/20B_tokenizer.json";
  if (!bpe_test::have_data(neox_file) || !bpe_test::have_data("gpt2-bpe/vocab.bpe")) return;
  auto neox = io::load_hf_tokenizer((bpe_test::data_dir() / neox_file).string());
  const std::string x = "def f(x:\n  )n x *j 2  # square\n\xf6\n\n";
  try {
    neox->encode(x);
    FAIL("expected hyena::error");
  } catch (const hyena::error& e) {
    const std::string m = e.what();
    CHECK(m.find("byte 0xF6 at offset 31") != std::string::npos);
    CHECK(m.find("not valid UTF-8") != std::string::npos);
  }
  // Invalid bytes the vocabulary does have round-trip (0xC3 alone, a cut sequence).
  const std::string cut = "caf\xc3 ok";
  CHECK(neox->decode(neox->encode(cut)) == cut);
  // GPT-2's vocabulary has all 256 bytes: any bytes round-trip.
  auto gpt2 = io::load_gpt2_tokenizer((bpe_test::data_dir() / "gpt2-bpe/encoder.json").string(),
                                      (bpe_test::data_dir() / "gpt2-bpe/vocab.bpe").string());
  CHECK(gpt2->decode(gpt2->encode(x)) == x);
}

// fuzz_tokenizer_roundtrip: "\xa4\x9a\xe6 fd" through tok512 decoded with a leading space: the
// stray continuation bytes were grouped with the dummy-prefix space into one "code point", which
// fell back to bytes <0x20><0xA4><0x9A>, and decode strips the dummy prefix only from a piece.
TEST_CASE("fuzz regression: llama2.c tokenizer round-trips text starting with continuation bytes") {
  const std::string tok = "stories260k/tok512.bin";
  if (!bpe_test::have_data(tok)) return;
  io::llama2c_tokenizer t((bpe_test::data_dir() / tok).string(), 512);
  for (const std::string& x : {std::string("\xa4\x9a\xe6 fd"), std::string("\xa4 f"), std::string("\x80"),
                              std::string("\xbf\xbf\xbf\xbf x")}) {
    CAPTURE(x);
    CHECK(t.decode(t.encode(x)) == x);
  }
  CHECK(t.encode("\xa4 f").front() == t.encode(" ").front());  // the dummy prefix is the piece " "
}

// fuzz_hf_tokenizer: a 4 kB tokenizer.json whose vocab gave one token the id 1777778072 made the
// loader allocate a table of that many strings (7 GB). Ids must lie below the number of tokens
// the file defines (the vocab's plus the added tokens) times two, plus 1024.
TEST_CASE("fuzz regression: a tokenizer.json id far beyond its token count is refused, not allocated") {
  const std::string vocab = R"({"a": 0, "b": 1, "ab": 1777778072})";
  const std::string text = R"({"model": {"type": "BPE", "vocab": )" + vocab +
                           R"(, "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}, "decoder": null})";
  try {
    io::hf_tokenizer_from_json(text, "big_id.json");
    FAIL("expected hyena::error");
  } catch (const hyena::error& e) {
    const std::string m = e.what();
    CHECK(m.find("big_id.json") != std::string::npos);
    CHECK(m.find("vocab id 1777778072 is far beyond the 3 tokens") != std::string::npos);
  }
  const std::string added = R"({"added_tokens": [{"id": 900000000, "content": "<x>"}], "model": {"type": "BPE",
    "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}})";
  CHECK_THROWS_WITH_AS(io::hf_tokenizer_from_json(added, "big_added.json"), doctest::Contains("has id 900000000"),
                       hyena::error);
}

// fuzz_gpt2_tokenizer (out of memory, 1.4M executions into a 35-minute run): a 202-byte encoder.json
// giving one token the id 77777261 made the loader allocate a 2.5 GB table of strings. The same
// density rule as tokenizer.json's now applies.
TEST_CASE("fuzz regression: an encoder.json id far beyond its token count is refused, not allocated") {
  const auto dir = std::filesystem::temp_directory_path() / "hyena_fuzz_gpt2_big_id";
  std::filesystem::create_directories(dir);
  const std::string enc = (dir / "encoder.json").string(), bpe = (dir / "vocab.bpe").string();
  std::ofstream(enc) << R"({"Ā": 0, "a": 1, "ab": 77777261})";
  std::ofstream(bpe) << "#version: 0.2\n";
  CHECK_THROWS_WITH_AS(io::load_gpt2_tokenizer(enc, bpe),
                       doctest::Contains("id 77777261 is far beyond the 3 tokens the file defines"), hyena::error);
  std::filesystem::remove_all(dir);
}

// fuzz_hf_tokenizer (UBSan): an added token with "id": 31844674407370955161502 (a float in JSON)
// was converted to int32, which is undefined behaviour. Ids must be integers in [0, 2^31).
TEST_CASE("fuzz regression: a non-integer added-token id is refused") {
  for (const char* id : {"3.1844674407370955e22", "1.5", "-1", "4294967296", "\"7\""}) {
    const std::string text = std::string(R"({"added_tokens": [{"id": )") + id +
                             R"(, "content": "<x>"}], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})";
    CAPTURE(id);
    CHECK_THROWS_WITH_AS(io::hf_tokenizer_from_json(text, "bad_id.json"), doctest::Contains("bad_id.json"),
                         hyena::error);
  }
}

// The same kind in our checkpoints' hyena.config metadata (model_config_from_json): a float where
// an integer belongs was converted with undefined behaviour; now it is an error naming the field.
TEST_CASE("fuzz regression: model config fields are read by their type") {
  CHECK_THROWS_WITH_AS(models::model_config_from_json(nlohmann::json::parse(R"({"vocab": 1e30})")),
                       doctest::Contains("field 'vocab' must be an integer"), hyena::error);
  CHECK_THROWS_WITH_AS(models::model_config_from_json(nlohmann::json::parse(R"({"hidden": 64.5})")),
                       doctest::Contains("field 'hidden' must be an integer"), hyena::error);
  CHECK_THROWS_WITH_AS(models::model_config_from_json(nlohmann::json::parse(R"({"tie_embeddings": 1})")),
                       doctest::Contains("must be true or false"), hyena::error);
  auto c = models::model_config_from_json(nlohmann::json::parse(R"({"vocab": 300, "rotary_base": 500})"));
  CHECK(c.vocab == 300);
  CHECK(c.rotary_base == 500.0);
}

// fuzz_safetensors (UBSan, a 10M-execution run): {"a": {"dtype": "F32", "shape": [0,
// 446744073709551615, 184467440757930, 115650], "data_offsets": [0, 0]}} is a valid file (no
// elements, so no bytes; the reference reader accepts it), but load() made a view whose strides,
// the products of the trailing dimensions, overflowed index_t. Now load() refuses such a shape.
TEST_CASE("fuzz regression: a zero-element tensor whose strides overflow is refused by load()") {
  hyena::testing::scratch_dir dir;
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[0,446744073709551615,184467440757930,115650],"data_offsets":[0,0]},)"
      R"("ok":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}})";
  hyena::testing::write_raw(dir.file("x.safetensors"), header, "");
  auto f = io::safetensors_file::open(dir.file("x.safetensors"));  // valid per the format
  CHECK(f.info("a").numel() == 0);
  CHECK_THROWS_WITH_AS(f.load<float>("a"), doctest::Contains("cannot be addressed"), hyena::error);
  CHECK(f.load<float>("ok").numel() == 0);  // a plain empty tensor still loads
}
