#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <hyena/io/byte_tokenizer.hpp>
#include <hyena/tensor/random.hpp>

using namespace hyena;

TEST_CASE("byte tokenizer: known ids and exact round trip of every byte") {
  io::byte_tokenizer tok;
  auto ids = tok.encode("Hi\n\xff");
  REQUIRE(ids.size() == 4);
  CHECK(ids[0] == 72);
  CHECK(ids[1] == 105);
  CHECK(ids[2] == 10);
  CHECK(ids[3] == 255);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  all += all;  // includes NUL bytes and invalid UTF-8
  auto all_ids = tok.encode(all);
  CHECK(all_ids.size() == all.size());
  CHECK(tok.decode(all_ids) == all);
  rng r(5);
  std::string noise(1000, '\0');
  for (auto& c : noise) c = static_cast<char>(r.below(256));
  CHECK(tok.decode(tok.encode(noise)) == noise);
}

TEST_CASE("byte tokenizer: through the tokenizer interface") {
  std::unique_ptr<io::tokenizer> tok = std::make_unique<io::byte_tokenizer>();
  CHECK(tok->vocab_size() == 256);
  CHECK(tok->name() == "byte");
  CHECK_FALSE(tok->bos_id().has_value());
  CHECK_FALSE(tok->eos_id().has_value());
  auto ids = tok->encode("héllo");  // 6 bytes of UTF-8
  CHECK(ids.size() == 6);
  CHECK(tok->byte_length(ids) == 6);
  CHECK(tok->bytes_per_token(ids) == 1.0);
  CHECK(tok->decode(ids) == "héllo");
  CHECK(tok->encode("").empty());
  // 8 bytes at an average of ln 256 nats each is 8 bits per byte.
  CHECK(io::bits_per_byte(8 * std::log(256.0), 8) == doctest::Approx(8.0));
}

TEST_CASE("byte tokenizer: out-of-range ids throw hyena::error") {
  io::byte_tokenizer tok;
  std::vector<std::int32_t> bad{65, 256};
  CHECK_THROWS_AS(tok.decode(bad), hyena::error);
  std::vector<std::int32_t> neg{-1};
  CHECK_THROWS_AS(tok.decode(neg), hyena::error);
  CHECK_THROWS_AS(io::bits_per_byte(1.0, 0), hyena::error);
}
