#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <hyena/io/byte_tokenizer.hpp>
#include <hyena/io/token_file.hpp>

using namespace hyena;
namespace fs = std::filesystem;

namespace {

// A fresh, empty folder per test case, removed afterwards.
struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("hyena_token_file_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::size_t entries() const { return std::distance(fs::directory_iterator(path), fs::directory_iterator()); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void spit(const std::string& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}
// The message of the hyena::error that opening `p` throws ("" if none).
std::string open_error(const std::string& p) {
  try {
    io::token_file f(p);
  } catch (const hyena::error& e) {
    return e.what();
  }
  return "";
}
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("token file: uint16 round trip with header fields") {
  temp_dir d;
  std::vector<std::int32_t> ids{0, 1, 65535, 42, 7};
  io::write_token_file(d.file("a.tok"), ids, 65536, 123);
  CHECK(fs::file_size(d.file("a.tok")) == 64 + 5 * 2);
  CHECK(d.entries() == 1);  // no temp file left behind
  io::token_file f(d.file("a.tok"));
  CHECK(f.dtype() == io::token_dtype::uint16);
  CHECK(f.size() == 5);
  CHECK(f.vocab() == 65536);
  CHECK(f.source_bytes() == 123);
  CHECK(f.bytes_per_token() == doctest::Approx(123.0 / 5));
  for (int i = 0; i < 5; ++i) CHECK(f.tokens()[i] == ids[i]);
  std::vector<std::int32_t> out(3);
  f.tokens().copy_to(2, 3, out.data());
  CHECK(out == std::vector<std::int32_t>{65535, 42, 7});
  // Known bytes: the magic, then little-endian fields.
  std::string raw = slurp(d.file("a.tok"));
  CHECK(raw.substr(0, 4) == "HYTK");
  CHECK(raw[4] == 1);
  CHECK(raw[8] == 2);
  CHECK(static_cast<unsigned char>(raw[64 + 4]) == 0xff);  // 65535 low byte
  CHECK(raw[64 + 6] == 42);
  // Moving keeps the mapping alive.
  io::token_file g = std::move(f);
  CHECK(g.tokens()[3] == 42);
}

TEST_CASE("token file: uint32 round trip, explicit and automatic") {
  temp_dir d;
  std::vector<std::int32_t> ids{70000, 0, 99999, 65536};
  io::write_token_file(d.file("b.tok"), ids, 100000);
  io::token_file f(d.file("b.tok"));
  CHECK(f.dtype() == io::token_dtype::uint32);
  CHECK(fs::file_size(d.file("b.tok")) == 64 + 4 * 4);
  for (int i = 0; i < 4; ++i) CHECK(f.tokens()[i] == ids[i]);
  std::vector<std::int32_t> small{1, 2, 3};
  io::write_token_file(d.file("c.tok"), small, 256, 0, io::token_dtype::uint32);
  io::token_file g(d.file("c.tok"));
  CHECK(g.dtype() == io::token_dtype::uint32);
  CHECK(g.tokens()[2] == 3);
  // Overwriting replaces atomically.
  io::write_token_file(d.file("c.tok"), std::vector<std::int32_t>{9}, 256);
  CHECK(io::token_file(d.file("c.tok")).size() == 1);
  // An empty file of ids is valid.
  io::write_token_file(d.file("e.tok"), std::vector<std::int32_t>{}, 256);
  CHECK(io::token_file(d.file("e.tok")).size() == 0);
}

TEST_CASE("token file: corrupt files give one hyena::error naming the file and problem") {
  temp_dir d;
  std::vector<std::int32_t> ids{1, 2, 3, 4, 5, 6};
  std::string good_path = d.file("good.tok");
  io::write_token_file(good_path, ids, 10);
  const std::string good = slurp(good_path);

  std::string p = d.file("bad.tok");
  spit(p, good.substr(0, good.size() - 1));  // truncated payload
  std::string e = open_error(p);
  CHECK(contains(e, p));
  CHECK(contains(e, "truncated"));

  spit(p, good.substr(0, 30));  // truncated header
  CHECK(contains(open_error(p), "header"));

  spit(p, good + "xx");  // extra bytes
  CHECK(contains(open_error(p), "size mismatch"));

  std::string m = good;
  m[0] = 'X';
  spit(p, m);
  CHECK(contains(open_error(p), "bad magic"));

  m = good;
  m[4] = 9;  // version
  spit(p, m);
  CHECK(contains(open_error(p), "version"));

  m = good;
  m[16] = 5;  // count changed without fixing the checksum
  spit(p, m);
  CHECK(contains(open_error(p), "checksum"));

  m = good;
  m[64 + 4] = 10;  // id 10 with vocab 10
  spit(p, m);
  e = open_error(p);
  CHECK(contains(e, "id 10 at index 2"));
  CHECK_NOTHROW(io::token_file(p, /*check_ids=*/false));

  CHECK(contains(open_error(d.file("missing.tok")), "cannot open"));
  spit(p, "");
  CHECK(contains(open_error(p), "truncated"));
}

TEST_CASE("token file: failing writes leave nothing behind") {
  temp_dir d;
  std::string p = d.file("x.tok");
  io::write_token_file(p, std::vector<std::int32_t>{1, 2, 3}, 4);
  const std::string before = slurp(p);
  // An id >= vocab: rejected, the old file untouched.
  CHECK_THROWS_AS(io::write_token_file(p, std::vector<std::int32_t>{1, 4}, 4), hyena::error);
  CHECK_THROWS_AS(io::write_token_file(p, std::vector<std::int32_t>{-1}, 4), hyena::error);
  CHECK_THROWS_AS(io::write_token_file(p, std::vector<std::int32_t>{1}, 70000, 0, io::token_dtype::uint16),
                  hyena::error);
  CHECK(slurp(p) == before);
  CHECK(d.entries() == 1);
  // Failure after the data is written (rename onto a non-empty folder): the temp file goes.
  fs::create_directories(d.path / "dir.tok");
  spit(d.file("dir.tok/keep"), "k");
  CHECK_THROWS_AS(io::write_token_file(d.file("dir.tok"), std::vector<std::int32_t>(100000, 3), 4), hyena::error);
  CHECK(d.entries() == 2);  // x.tok and dir.tok only
  // A folder that does not exist.
  CHECK_THROWS_AS(io::write_token_file(d.file("nope/y.tok"), std::vector<std::int32_t>{1}, 4), hyena::error);
}

TEST_CASE("token file: prepare and split from a text file") {
  temp_dir d;
  std::string text = "hello world, tokens!\n";
  spit(d.file("t.txt"), text);
  io::byte_tokenizer tok;
  auto r = io::prepare_token_file(d.file("t.txt"), d.file("t.tok"), tok);
  CHECK(r.tokens == index_t(text.size()));
  io::token_file f(d.file("t.tok"));
  CHECK(f.source_bytes() == text.size());
  std::vector<std::int32_t> ids(f.size());
  f.tokens().copy_to(0, f.size(), ids.data());
  CHECK(tok.decode(ids) == text);

  auto [train, val] = io::prepare_token_split(d.file("t.txt"), d.file("tr.tok"), d.file("va.tok"), tok, 0.25);
  CHECK(train.tokens + val.tokens == index_t(text.size()));
  CHECK(val.tokens == 5);  // round(21 * 0.25)
  io::token_file v(d.file("va.tok"));
  std::vector<std::int32_t> vids(v.size());
  v.tokens().copy_to(0, v.size(), vids.data());
  CHECK(tok.decode(vids) == text.substr(text.size() - 5));
  CHECK(v.source_bytes() == 5);
  CHECK_THROWS_AS(io::prepare_token_split(d.file("t.txt"), d.file("a"), d.file("b"), tok, 1.5), hyena::error);
  CHECK_THROWS_AS(io::prepare_token_file(d.file("none.txt"), d.file("n.tok"), tok), hyena::error);
}
