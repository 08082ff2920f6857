#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <hyena/io/safetensors.hpp>
#include <limits>
#include <random>

#include "safetensors_test_util.hpp"

using namespace hyena;
using namespace hyena::io;
using hyena::testing::scratch_dir;
using hyena::testing::write_raw;

// ---- fp16 / bf16 ------------------------------------------------------------

TEST_CASE("half: fp16 known values") {
  CHECK(fp16_to_float(0x3C00) == 1.0f);
  CHECK(fp16_to_float(0xC100) == -2.5f);
  CHECK(fp16_to_float(0x7BFF) == 65504.0f);
  CHECK(fp16_to_float(0x0001) == std::ldexp(1.0f, -24));           // smallest subnormal
  CHECK(fp16_to_float(0x03FF) == std::ldexp(1023.0f, -24));        // largest subnormal
  CHECK(fp16_to_float(0x0400) == std::ldexp(1.0f, -14));           // smallest normal
  CHECK(fp16_to_float(0x8000) == 0.0f);
  CHECK(std::signbit(fp16_to_float(0x8000)));
  CHECK(fp16_to_float(0x7C00) == std::numeric_limits<float>::infinity());
  CHECK(fp16_to_float(0xFC00) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(fp16_to_float(0x7E00)));
  CHECK(std::isnan(fp16_to_float(0x7C01)));  // signalling pattern is still NaN

  CHECK(float_to_fp16(1.0f) == 0x3C00);
  CHECK(float_to_fp16(-2.5f) == 0xC100);
  CHECK(float_to_fp16(65504.0f) == 0x7BFF);
  CHECK(float_to_fp16(65519.0f) == 0x7BFF);  // below the halfway point to 65536
  CHECK(float_to_fp16(65520.0f) == 0x7C00);  // halfway, ties to even = Inf
  CHECK(float_to_fp16(1e6f) == 0x7C00);
  CHECK(float_to_fp16(-1e6f) == 0xFC00);
  CHECK(float_to_fp16(std::numeric_limits<float>::infinity()) == 0x7C00);
  CHECK(float_to_fp16(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(float_to_fp16(std::ldexp(1.0f, -25)) == 0x0000);   // tie to even: 0
  CHECK(float_to_fp16(std::ldexp(3.0f, -26)) == 0x0001);   // 0.75 units rounds up
  CHECK(float_to_fp16(std::ldexp(3.0f, -25)) == 0x0002);   // 1.5 units ties to 2
  CHECK(float_to_fp16(std::ldexp(1023.0f, -24)) == 0x03FF);
  CHECK(float_to_fp16(std::ldexp(1.0f, -14)) == 0x0400);
  CHECK(float_to_fp16(1e-10f) == 0x0000);
  CHECK(float_to_fp16(-0.0f) == 0x8000);
  CHECK(float_to_fp16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);      // tie, stays even
  CHECK(float_to_fp16(1.0f + std::ldexp(3.0f, -11)) == 0x3C02);      // tie, rounds to even
  CHECK(float_to_fp16(2047.0f / 1024.0f + std::ldexp(1.0f, -11)) == 0x4000);  // carry into exponent
  uint16_t n = float_to_fp16(std::numeric_limits<float>::quiet_NaN());
  CHECK((n & 0x7C00) == 0x7C00);
  CHECK((n & 0x03FF) != 0);
  CHECK(std::isnan(fp16_to_float(float_to_fp16(-std::numeric_limits<float>::quiet_NaN()))));
}

TEST_CASE("half: every fp16 pattern round-trips through float") {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    float f = fp16_to_float(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) continue;
    REQUIRE(float_to_fp16(f) == h);
  }
}

#if defined(__FLT16_MAX__)
TEST_CASE("half: float_to_fp16 agrees with the compiler's _Float16") {
  std::mt19937 g(7);
  std::uniform_int_distribution<std::uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    float f = std::bit_cast<float>(bits(g));
    if (i % 2) f = std::ldexp(std::uniform_real_distribution<float>(-1, 1)(g), static_cast<int>(i % 44) - 30);
    if (std::isnan(f)) continue;
    _Float16 ref = static_cast<_Float16>(f);
    REQUIRE(float_to_fp16(f) == std::bit_cast<std::uint16_t>(ref));
    REQUIRE(fp16_to_float(std::bit_cast<std::uint16_t>(ref)) == static_cast<float>(ref));
  }
}
#endif

TEST_CASE("half: bf16 known values") {
  CHECK(bf16_to_float(0x3F80) == 1.0f);
  CHECK(bf16_to_float(0xC020) == -2.5f);
  CHECK(bf16_to_float(0x0001) == std::ldexp(1.0f, -133));  // subnormal
  CHECK(bf16_to_float(0x7F80) == std::numeric_limits<float>::infinity());
  CHECK(bf16_to_float(0xFF80) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(bf16_to_float(0x7FC0)));
  CHECK(float_to_bf16(1.0f) == 0x3F80);
  CHECK(float_to_bf16(-2.5f) == 0xC020);
  CHECK(float_to_bf16(65504.0f) == 0x4780);  // 65504 rounds to 65536 in bf16
  CHECK(float_to_bf16(std::ldexp(1.0f, -133)) == 0x0001);
  CHECK(float_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3F80);  // tie, stays even
  CHECK(float_to_bf16(1.0f + std::ldexp(3.0f, -8)) == 0x3F82);  // tie, rounds to even
  CHECK(float_to_bf16(std::numeric_limits<float>::max()) == 0x7F80);  // overflows to Inf
  CHECK(float_to_bf16(std::numeric_limits<float>::infinity()) == 0x7F80);
  CHECK(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits only in the low 16 bits must not become Inf.
  CHECK(std::isnan(bf16_to_float(float_to_bf16(std::bit_cast<float>(0x7F800001u)))));
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    float f = bf16_to_float(static_cast<std::uint16_t>(b));
    if (!std::isnan(f)) REQUIRE(float_to_bf16(f) == b);
  }
}

// ---- round trips --------------------------------------------------------------

TEST_CASE("safetensors: F32 and F64 round trip with metadata") {
  scratch_dir dir;
  auto a = make_tensor<float>({2, 3}, {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, -7.0f});
  std::vector<double> b = {0.1, 1.0 / 3.0, -1e300, 42.0};
  float scalar = 3.5f;
  tensor<float> empty({0, 5});
  auto c = make_tensor<float>({3}, {1, 2, 3});

  safetensors_writer w;
  w.add("layer.a", a);
  w.add("b", {4}, b.data(), dtype::F64);
  w.add("scalar", {}, &scalar);
  w.add("empty", empty);
  w.add("c_as_f64", c.v(), dtype::F64);
  w.add_metadata("format", "pt");
  w.add_metadata("note", "hyena test");
  std::string path = dir.file("rt.safetensors");
  w.write(path);
  CHECK(dir.listing() == std::set<std::string>{"rt.safetensors"});  // no temp file left

  auto f = safetensors_file::open(path);
  CHECK(f.names() == std::vector<std::string>{"b", "c_as_f64", "empty", "layer.a", "scalar"});
  CHECK(f.has("layer.a"));
  CHECK_FALSE(f.has("nope"));
  CHECK(f.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"note", "hyena test"}});
  CHECK(f.info("layer.a").type == dtype::F32);
  CHECK(f.info("layer.a").shape == std::vector<index_t>{2, 3});
  CHECK(f.info("b").type == dtype::F64);
  CHECK(f.info("scalar").shape.empty());
  CHECK(f.info("empty").shape == std::vector<index_t>{0, 5});

  auto la = f.load<float>("layer.a");
  CHECK(la.shape() == shape{2, 3});
  for (int i = 0; i < 6; ++i) CHECK(la.data()[i] == a.data()[i]);
  auto lb = f.load<double>("b");
  for (int i = 0; i < 4; ++i) CHECK(lb.data()[i] == b[i]);
  auto lbf = f.load<float>("b");  // F64 -> float
  for (int i = 0; i < 4; ++i) CHECK(lbf.data()[i] == static_cast<float>(b[i]));
  auto lad = f.load<double>("layer.a");  // F32 -> double
  for (int i = 0; i < 6; ++i) CHECK(lad.data()[i] == static_cast<double>(a.data()[i]));
  CHECK(f.load<float>("scalar").data()[0] == 3.5f);
  CHECK(f.load<float>("empty").numel() == 0);
  tensor<double> cd({3});
  f.read<double>("c_as_f64", cd.v());
  CHECK(cd.data()[2] == 3.0);

  // Layout: 8-byte header, F64 tensors first, no gaps, each tensor aligned to its element size.
  std::string raw = testing::read_bytes(path);
  std::uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(f.info("b").begin == 0);
  CHECK(f.info("c_as_f64").begin == 32);
  CHECK(f.info("layer.a").begin == 56);
  CHECK(f.info("scalar").begin == 80);
  CHECK(raw.size() == 8 + n + 84);
  CHECK(reinterpret_cast<std::uintptr_t>(f.raw("c_as_f64").data()) % 8 == 0);
}

TEST_CASE("safetensors: F16 and BF16 are written rounded and read back") {
  scratch_dir dir;
  std::vector<float> v = {1.0f, -2.5f, 65504.0f, 1.0f + std::ldexp(1.0f, -9), std::ldexp(1.0f, -24)};
  std::vector<double> d = {1.0, -2.5, 0.1};
  safetensors_writer w;
  w.add("h", {5}, v.data(), dtype::F16);
  w.add("b", {5}, v.data(), dtype::BF16);
  w.add("hd", {3}, d.data(), dtype::F16);
  w.write(dir.file("half.safetensors"));
  auto f = safetensors_file::open(dir.file("half.safetensors"));
  CHECK(f.info("h").type == dtype::F16);
  CHECK(f.info("b").type == dtype::BF16);
  auto h = f.load<float>("h");
  auto b = f.load<double>("b");
  for (int i = 0; i < 5; ++i) {
    CHECK(h.data()[i] == fp16_to_float(float_to_fp16(v[i])));
    CHECK(b.data()[i] == static_cast<double>(bf16_to_float(float_to_bf16(v[i]))));
  }
  CHECK(h.data()[2] == 65504.0f);
  CHECK(b.data()[2] == 65536.0);
  CHECK(f.load<float>("hd").data()[2] == fp16_to_float(float_to_fp16(0.1f)));
}

TEST_CASE("safetensors: hand-built file with F16, BF16, I32 and a space-padded header") {
  scratch_dir dir;
  std::string header =
      R"({"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},)"
      R"("i":{"dtype":"I32","shape":[1],"data_offsets":[14,18]},)"
      R"("r5":{"dtype":"F32","shape":[1,1,1,1,1],"data_offsets":[18,22]},)"
      R"("__metadata__":{"k":"v"}})";
  header += std::string(13, ' ');  // padding the format allows
  std::vector<std::uint16_t> h = {0x3C00, 0xC100, 0x0001, 0x7C00};
  std::vector<std::uint16_t> b = {0x3F80, 0xC020, 0xFF80};
  std::vector<std::int32_t> i = {-7};
  std::vector<float> r5 = {2.0f};
  write_raw(dir.file("x"), header,
            testing::bytes_of(h) + testing::bytes_of(b) + testing::bytes_of(i) + testing::bytes_of(r5));
  auto f = safetensors_file::open(dir.file("x"));
  CHECK(f.metadata().at("k") == "v");
  auto th = f.load<float>("h");
  CHECK(th.shape() == shape{2, 2});
  CHECK(th.data()[0] == 1.0f);
  CHECK(th.data()[1] == -2.5f);
  CHECK(th.data()[2] == std::ldexp(1.0f, -24));
  CHECK(std::isinf(th.data()[3]));
  auto tb = f.load<double>("b");  // unaligned source bytes
  CHECK(tb.data()[0] == 1.0);
  CHECK(tb.data()[1] == -2.5);
  CHECK(tb.data()[2] == -std::numeric_limits<double>::infinity());
  CHECK(f.load<float>("i").data()[0] == -7.0f);
  // Rank 5 is listed but cannot become a (rank <= 4) hyena tensor.
  CHECK(f.info("r5").shape.size() == 5);
  CHECK_THROWS_WITH_AS(f.load<float>("r5"), doctest::Contains("rank 5 exceeds"), hyena::error);
}

// ---- bad files ------------------------------------------------------------------

namespace {
// Opens a file built from header + data and returns the error message ("" if none).
std::string open_error(const scratch_dir& dir, const std::string& header, const std::string& data,
                       std::uint64_t header_len = ~std::uint64_t(0)) {
  std::string path = dir.file("bad.safetensors");
  write_raw(path, header, data, header_len);
  try {
    safetensors_file::open(path);
  } catch (const hyena::error& e) {
    return e.what();
  }
  return "";
}
std::string one(const std::string& dt, const std::string& shape, const std::string& offs) {
  return R"({"t":{"dtype":")" + dt + R"(","shape":)" + shape + R"(,"data_offsets":)" + offs + "}}";
}
}  // namespace

TEST_CASE("safetensors: bad files throw hyena::error naming file, tensor and problem") {
  scratch_dir dir;
  const std::string data(16, '\0');
  auto expect = [&](const std::string& msg, const std::string& keyword, bool names_tensor) {
    INFO("message: ", msg);
    CHECK(msg.find(keyword) != std::string::npos);
    CHECK(msg.find("bad.safetensors") != std::string::npos);
    if (names_tensor) CHECK(msg.find("tensor 't'") != std::string::npos);
  };

  SUBCASE("shorter than 8 bytes") {
    testing::write_bytes(dir.file("bad.safetensors"), "abc");
    CHECK_THROWS_WITH_AS(safetensors_file::open(dir.file("bad.safetensors")), doctest::Contains("truncated file"),
                         hyena::error);
  }
  SUBCASE("empty file") {
    testing::write_bytes(dir.file("bad.safetensors"), "");
    CHECK_THROWS_WITH_AS(safetensors_file::open(dir.file("bad.safetensors")), doctest::Contains("truncated file"),
                         hyena::error);
  }
  SUBCASE("header length beyond the file") {
    expect(open_error(dir, one("F32", "[1]", "[0,4]"), data, 1000), "runs past the end", false);
  }
  SUBCASE("header length beyond the cap") {
    expect(open_error(dir, "{}", "", std::uint64_t(1) << 40), "exceeds the limit", false);
  }
  SUBCASE("data range beyond the file") {
    expect(open_error(dir, one("F32", "[8]", "[0,32]"), data), "beyond the 16-byte data section", true);
  }
  SUBCASE("invalid JSON") { expect(open_error(dir, R"({"t": {"dtype": )", data), "not valid JSON", false); }
  SUBCASE("header not an object") { expect(open_error(dir, "[1, 2, 3]", data), "not a JSON object", false); }
  SUBCASE("entry not an object") { expect(open_error(dir, R"({"t": 5})", data), "entry is not a JSON object", true); }
  SUBCASE("unknown dtype") { expect(open_error(dir, one("F7", "[1]", "[0,4]"), data), "unknown dtype 'F7'", true); }
  SUBCASE("missing dtype") {
    expect(open_error(dir, R"({"t":{"shape":[1],"data_offsets":[0,4]}})", data), "dtype", true);
  }
  SUBCASE("negative shape") {
    expect(open_error(dir, one("F32", "[2,-1]", "[0,4]"), data), "non-negative integers", true);
  }
  SUBCASE("non-integer shape") {
    expect(open_error(dir, one("F32", "[1.5]", "[0,4]"), data), "non-negative integers", true);
  }
  SUBCASE("offsets do not match shape * dtype size") {
    expect(open_error(dir, one("F32", "[3]", "[0,8]"), data), "needs 12", true);
    expect(open_error(dir, one("F64", "[2]", "[0,8]"), data), "needs 16", true);
  }
  SUBCASE("shape so large its byte count would overflow") {
    expect(open_error(dir, one("F32", "[4611686018427387904,4611686018427387904]", "[0,8]"), data),
           "needs more than 2^64", true);
  }
  SUBCASE("offsets begin after end") {
    expect(open_error(dir, one("F32", "[0]", "[8,4]"), data), "begin is after end", true);
  }
  SUBCASE("negative offsets") {
    expect(open_error(dir, one("F32", "[1]", "[-4,0]"), data), "non-negative integers", true);
  }
  SUBCASE("offsets not a pair") {
    expect(open_error(dir, one("F32", "[1]", "[0]"), data), "data_offsets must be", true);
  }
  SUBCASE("overlapping ranges") {
    std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
    expect(open_error(dir, h, data), "overlaps tensor 'a'", true);
  }
  SUBCASE("metadata value not a string") {
    expect(open_error(dir, R"({"__metadata__":{"k":1}})", data), "__metadata__", false);
  }
  SUBCASE("file does not exist") {
    CHECK_THROWS_WITH_AS(safetensors_file::open(dir.file("missing.safetensors")),
                         doctest::Contains("missing.safetensors"), hyena::error);
  }
  SUBCASE("path is a directory") {
    CHECK_THROWS_WITH_AS(safetensors_file::open(dir.path.string()), doctest::Contains("not a regular file"),
                         hyena::error);
  }
}

TEST_CASE("safetensors: reading into a wrong shape or a missing name throws") {
  scratch_dir dir;
  auto a = make_tensor<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  safetensors_writer w;
  w.add("a", a);
  w.write(dir.file("ok.safetensors"));
  auto f = safetensors_file::open(dir.file("ok.safetensors"));
  tensor<float> wrong({3, 2});
  try {
    f.read<float>("a", wrong.v());
    FAIL("expected hyena::error");
  } catch (const hyena::error& e) {
    std::string m = e.what();
    CHECK(m.find("shape mismatch") != std::string::npos);
    CHECK(m.find("[2, 3]") != std::string::npos);
    CHECK(m.find("[3, 2]") != std::string::npos);
    CHECK(m.find("tensor 'a'") != std::string::npos);
  }
  tensor<float> flat({6});
  CHECK_THROWS_AS(f.read<float>("a", flat.v()), hyena::error);
  CHECK_THROWS_WITH_AS(f.load<float>("b"), doctest::Contains("tensor 'b': no such tensor"), hyena::error);
  CHECK_THROWS_WITH_AS(f.info("b"), doctest::Contains("no such tensor"), hyena::error);
  tensor<float> big({2, 6});
  view<float> strided(big.data(), shape{2, 3}, {6, 1, 0, 0});
  CHECK_THROWS_WITH_AS(f.read<float>("a", strided), doctest::Contains("not contiguous"), hyena::error);
}

// ---- writer failures ------------------------------------------------------------------

TEST_CASE("safetensors: writer rejects bad entries") {
  float x[2] = {1, 2};
  safetensors_writer w;
  w.add("a", {2}, x);
  CHECK_THROWS_WITH_AS(w.add("a", {2}, x), doctest::Contains("duplicate tensor name 'a'"), hyena::error);
  CHECK_THROWS_WITH_AS(w.add("__metadata__", {2}, x), doctest::Contains("reserved"), hyena::error);
  CHECK_THROWS_WITH_AS(w.add("i", {2}, x, dtype::I32), doctest::Contains("cannot write dtype I32"), hyena::error);
  CHECK_THROWS_WITH_AS(w.add("n", {-1}, x), doctest::Contains("negative dimension"), hyena::error);
  CHECK_THROWS_WITH_AS(w.add("z", {2}, static_cast<const float*>(nullptr)), doctest::Contains("null data"),
                       hyena::error);
  CHECK(w.size() == 1);
}

TEST_CASE("safetensors: a failed write leaves no temp file and the destination untouched") {
  scratch_dir dir;
  float x[2] = {1, 2};
  safetensors_writer w;
  w.add("a", {2}, x);

  SUBCASE("folder does not exist") {
    auto before = dir.listing();
    CHECK_THROWS_WITH_AS(w.write(dir.file("no_such_dir/out.safetensors")), doctest::Contains("no_such_dir"),
                         hyena::error);
    CHECK(dir.listing() == before);
  }
  SUBCASE("destination is a directory") {
    std::filesystem::create_directory(dir.path / "target");
    testing::write_bytes(dir.file("target/keep.txt"), "keep");
    auto before = dir.listing();
    CHECK_THROWS_WITH_AS(w.write(dir.file("target")), doctest::Contains("rename"), hyena::error);
    CHECK(dir.listing() == before);  // no temp file next to it
    CHECK(std::filesystem::is_directory(dir.path / "target"));
    CHECK(testing::read_bytes(dir.file("target/keep.txt")) == "keep");
  }
  SUBCASE("parent is a regular file") {
    testing::write_bytes(dir.file("plain"), "old contents");
    auto before = dir.listing();
    CHECK_THROWS_AS(w.write(dir.file("plain/out.safetensors")), hyena::error);
    CHECK(dir.listing() == before);
    CHECK(testing::read_bytes(dir.file("plain")) == "old contents");
  }
  SUBCASE("a successful write replaces an existing file") {
    testing::write_bytes(dir.file("out.safetensors"), "old contents");
    w.write(dir.file("out.safetensors"));
    CHECK(dir.listing() == std::set<std::string>{"out.safetensors"});
    CHECK(safetensors_file::open(dir.file("out.safetensors")).load<float>("a").data()[1] == 2.0f);
  }
}
