// Loading Hugging Face checkpoints: logits of tiny GPTNeoXForCausalLM / LlamaForCausalLM
// models (tests/reference/hf_tiny_golden.py, transformers 4.31) reproduced from their
// save_pretrained folders (single file, sharded, newer config spelling); save_hf writes
// back the same tensors; broken folders fail with one error naming the file and problem.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <hyena/io/hf_checkpoint.hpp>
#include <hyena/models/config_json.hpp>
#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/llama.hpp>

#include "../support/fixture.hpp"
#include "safetensors_test_util.hpp"

using namespace hyena;
namespace fs = std::filesystem;

namespace {

std::string fixture_dir(const std::string& name) {
  return std::string(HYENA_TEST_SOURCE_DIR) + "/reference/fixtures/" + name;
}

// Max |ours - HF| over the logits of the fixture's prompt.
template <class Model>
double logits_error(const std::string& folder, const std::string& logits_of = "") {
  auto fx = testing::fixture::load((logits_of.empty() ? fs::path(folder).filename().string() : logits_of) +
                                   "/logits.json");
  auto tokens_d = fx.values<double>("tokens");
  tensor<std::int32_t> tokens({1, static_cast<index_t>(tokens_d.size())});
  for (std::size_t i = 0; i < tokens_d.size(); ++i) tokens.data()[i] = static_cast<std::int32_t>(tokens_d[i]);
  auto m = io::load_hf<Model>(folder);
  typename Model::context ctx;
  m.reserve(1, tokens.numel(), models::mode::infer);
  auto logits = m.forward(ctx, tokens.v());
  auto want = fx.values<double>("logits");
  REQUIRE(static_cast<index_t>(want.size()) == logits.numel());
  double err = 0;
  for (std::size_t i = 0; i < want.size(); ++i) err = std::max(err, std::abs(double(logits.data[i]) - want[i]));
  return err;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const error& e) {
    return e.what();
  }
  return "(no error)";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A copy of a fixture folder to break.
std::string copy_fixture(const testing::scratch_dir& dir, const std::string& name) {
  fs::copy(fixture_dir(name), dir.path / name, fs::copy_options::recursive);
  return (dir.path / name).string();
}

// Rewrites `file` with every tensor passed through `edit(name, shape, values)`; returning
// false drops the tensor.
template <class Edit>
void rewrite(const std::string& file, Edit edit) {
  std::vector<std::pair<std::string, std::pair<std::vector<index_t>, std::vector<float>>>> all;
  {
    auto f = io::safetensors_file::open(file);
    for (const auto& n : f.names()) {
      auto t = f.load<float>(n);
      auto tv = t.v();
      std::vector<index_t> s(tv.shape.dims.begin(), tv.shape.dims.begin() + tv.rank());
      std::vector<float> v(t.data(), t.data() + t.numel());
      if (edit(n, s, v)) all.push_back({n, {s, v}});
    }
  }
  io::safetensors_writer w;
  for (auto& [n, sv] : all) w.add(n, sv.first, sv.second.data());
  w.add_metadata("format", "pt");
  w.write(file);
}

void edit_config(const std::string& folder, const std::function<void(nlohmann::json&)>& edit) {
  auto path = folder + "/config.json";
  nlohmann::json j = nlohmann::json::parse(std::ifstream(path));
  edit(j);
  std::ofstream(path) << j.dump(2);
}

using neox_cpu = models::gpt_neox<backend::cpu>;
using llama_cpu = models::llama<backend::cpu>;

}  // namespace

TEST_CASE("hf checkpoint: GPT-NeoX logits match transformers") {
  // The file also holds rotary inv_freq buffers, which the loader ignores.
  CHECK(io::safetensors_file::open(fixture_dir("hf_tiny_neox") + "/model.safetensors")
            .has("gpt_neox.layers.0.attention.rotary_emb.inv_freq"));
  CHECK(logits_error<neox_cpu>(fixture_dir("hf_tiny_neox")) <= 1e-4);
  CHECK(logits_error<models::gpt_neox<backend::cpu_ref>>(fixture_dir("hf_tiny_neox")) <= 1e-4);
  CHECK(logits_error<models::gpt_neox<backend::cpu_ref, double>>(fixture_dir("hf_tiny_neox")) <= 1e-4);
}

TEST_CASE("hf checkpoint: sharded GPT-NeoX (model.safetensors.index.json)") {
  CHECK(logits_error<neox_cpu>(fixture_dir("hf_tiny_neox_sharded"), "hf_tiny_neox") <= 1e-4);
}

TEST_CASE("hf checkpoint: GPT-NeoX with the newer config spelling (rope_parameters)") {
  auto info = io::hf_model_config(fixture_dir("hf_tiny_neox_newcfg"));
  CHECK(info.config.rotary_base == 500);
  CHECK(info.config.rotary_pct == 0.5);
  CHECK(logits_error<neox_cpu>(fixture_dir("hf_tiny_neox_newcfg"), "hf_tiny_neox") <= 1e-4);
}

TEST_CASE("hf checkpoint: Llama (grouped-query) logits match transformers") {
  auto info = io::hf_model_config(fixture_dir("hf_tiny_llama"));
  CHECK(info.arch == "llama");
  CHECK(info.config.kv_heads == 2);
  CHECK(logits_error<llama_cpu>(fixture_dir("hf_tiny_llama")) <= 1e-4);
  CHECK(logits_error<models::llama<backend::cpu_ref>>(fixture_dir("hf_tiny_llama")) <= 1e-4);
}

TEST_CASE("hf checkpoint: F16 and BF16 files load (converted on read)") {
  testing::scratch_dir dir;
  auto m = io::load_hf<neox_cpu>(fixture_dir("hf_tiny_neox"));
  for (auto as : {io::dtype::F16, io::dtype::BF16}) {
    auto out = dir.file(std::string(io::dtype_name(as)));
    io::save_hf(out, m, "gpt_neox", as);
    auto h = io::load_hf<neox_cpu>(out);
    const double tol = as == io::dtype::F16 ? 1e-3 : 1e-2;  // relative rounding of the format
    double worst = 0;
    auto a = m.parameter_arena().flat(), b = h.parameter_arena().flat();
    REQUIRE(a.numel() == b.numel());
    for (index_t i = 0; i < a.numel(); ++i)
      worst = std::max(worst, std::abs(double(a.data[i]) - b.data[i]) / std::max(1.0, std::abs(double(a.data[i]))));
    CHECK(worst <= tol);
    CHECK(worst > 0);  // it really went through the 16-bit format
  }
}

TEST_CASE("hf checkpoint: save_hf writes the transformers tensors back") {
  testing::scratch_dir dir;
  for (std::string name : {"hf_tiny_neox", "hf_tiny_llama"}) {
    auto info = io::hf_model_config(fixture_dir(name));
    auto out = dir.file(name);
    if (info.arch == "gpt_neox") {
      auto m = io::load_hf<neox_cpu>(fixture_dir(name));
      io::save_hf(out, m, info.arch);
    } else {
      auto m = io::load_hf<llama_cpu>(fixture_dir(name));
      io::save_hf(out, m, info.arch);
    }
    auto orig = io::safetensors_file::open(fixture_dir(name) + "/model.safetensors");
    auto mine = io::safetensors_file::open(out + "/model.safetensors");
    CHECK(mine.metadata().at("format") == "pt");
    index_t compared = 0;
    for (const auto& n : orig.names()) {
      if (has(n, "inv_freq")) continue;  // a buffer, not a parameter
      INFO(name, ": ", n);
      REQUIRE(mine.has(n));
      CHECK(mine.info(n).shape == orig.info(n).shape);
      auto a = orig.load<float>(n), b = mine.load<float>(n);
      CHECK(std::equal(a.data(), a.data() + a.numel(), b.data()));
      ++compared;
    }
    CHECK(compared == static_cast<index_t>(mine.names().size()));
    CHECK(models::to_json(io::hf_model_config(out).config) == models::to_json(info.config));
  }
}

TEST_CASE("hf checkpoint: the model must be the one config.json describes") {
  auto info = io::hf_model_config(fixture_dir("hf_tiny_neox"));
  auto c = info.config;
  c.hidden = 64;
  neox_cpu wide(c);
  auto msg = error_of([&] { io::load_hf_weights(fixture_dir("hf_tiny_neox"), wide); });
  CHECK_MESSAGE(has(msg, "config.json"), msg);
  CHECK_MESSAGE(has(msg, "hidden 64"), msg);

  c = info.config;
  c.rotary_base = 10000;
  neox_cpu base(c);
  msg = error_of([&] { io::load_hf_weights(fixture_dir("hf_tiny_neox"), base); });
  CHECK_MESSAGE(has(msg, "rotary_base"), msg);

  // A Llama folder into a GPT-NeoX model of the same config: the parameter names differ.
  auto lc = io::hf_model_config(fixture_dir("hf_tiny_llama")).config;
  neox_cpu wrong(lc);
  msg = error_of([&] { io::load_hf_weights(fixture_dir("hf_tiny_llama"), wrong); });
  CHECK_MESSAGE(has(msg, "hf_tiny_llama: parameter 'blocks.0.norm1.bias' has no counterpart in a llama"), msg);
  models::llama<backend::cpu> other(info.config);
  testing::scratch_dir dir;
  msg = error_of([&] { io::save_hf(dir.file("out"), other, "gpt_neox"); });
  CHECK_MESSAGE(has(msg, "mlp.gate.weight"), msg);
  CHECK_FALSE(fs::exists(dir.file("out")));
}

TEST_CASE("hf checkpoint: broken folders name the file and the problem") {
  testing::scratch_dir dir;
  const std::string qkv = "gpt_neox.layers.1.attention.query_key_value.weight";

  SUBCASE("a tensor with the wrong shape") {
    auto f = copy_fixture(dir, "hf_tiny_neox");
    rewrite(f + "/model.safetensors", [&](const std::string& n, std::vector<index_t>& s, std::vector<float>& v) {
      if (n == qkv) s = {32, 96};  // transposed
      (void)v;
      return true;
    });
    auto msg = error_of([&] { io::load_hf<neox_cpu>(f); });
    CHECK_MESSAGE(has(msg, "model.safetensors"), msg);
    CHECK_MESSAGE(has(msg, qkv), msg);
    CHECK_MESSAGE(has(msg, "[32, 96]"), msg);
    CHECK_MESSAGE(has(msg, "[96, 32]"), msg);
  }
  SUBCASE("a missing tensor") {
    auto f = copy_fixture(dir, "hf_tiny_llama");
    const std::string gone = "model.layers.0.self_attn.k_proj.weight";
    rewrite(f + "/model.safetensors", [&](const std::string& n, auto&, auto&) { return n != gone; });
    auto msg = error_of([&] { io::load_hf<llama_cpu>(f); });
    CHECK_MESSAGE(has(msg, "model.safetensors"), msg);
    CHECK_MESSAGE(has(msg, "missing tensor '" + gone + "'"), msg);
    CHECK_MESSAGE(has(msg, "blocks.0.mixer.qkv.weight"), msg);
  }
  SUBCASE("a shard named in index.json is missing") {
    auto f = copy_fixture(dir, "hf_tiny_neox_sharded");
    fs::remove(f + "/model-00002-of-00003.safetensors");
    auto msg = error_of([&] { io::load_hf<neox_cpu>(f); });
    CHECK_MESSAGE(has(msg, "model.safetensors.index.json"), msg);
    CHECK_MESSAGE(has(msg, "model-00002-of-00003.safetensors"), msg);
    CHECK_MESSAGE(has(msg, "does not exist"), msg);
  }
  SUBCASE("a tensor missing from weight_map") {
    auto f = copy_fixture(dir, "hf_tiny_neox_sharded");
    auto path = f + "/model.safetensors.index.json";
    nlohmann::json j = nlohmann::json::parse(std::ifstream(path));
    j["weight_map"].erase("embed_out.weight");
    std::ofstream(path) << j.dump();
    auto msg = error_of([&] { io::load_hf<neox_cpu>(f); });
    CHECK_MESSAGE(has(msg, "index.json"), msg);
    CHECK_MESSAGE(has(msg, "'embed_out.weight'"), msg);
    CHECK_MESSAGE(has(msg, "weight_map"), msg);
  }
  SUBCASE("no weights at all") {
    auto f = copy_fixture(dir, "hf_tiny_neox");
    fs::remove(f + "/model.safetensors");
    auto msg = error_of([&] { io::load_hf<neox_cpu>(f); });
    CHECK_MESSAGE(has(msg, f), msg);
    CHECK_MESSAGE(has(msg, "no model.safetensors"), msg);
  }
  SUBCASE("config.json problems") {
    auto f = copy_fixture(dir, "hf_tiny_neox");
    edit_config(f, [](nlohmann::json& j) { j.erase("num_hidden_layers"); });
    auto msg = error_of([&] { io::load_hf<neox_cpu>(f); });
    CHECK_MESSAGE(has(msg, f + "/config.json"), msg);
    CHECK_MESSAGE(has(msg, "num_hidden_layers"), msg);
    edit_config(f, [](nlohmann::json& j) {
      j["num_hidden_layers"] = 2;
      j["model_type"] = "mistral";
    });
    msg = error_of([&] { io::load_hf<neox_cpu>(f); });
    CHECK_MESSAGE(has(msg, "model_type 'mistral'"), msg);
    edit_config(f, [](nlohmann::json& j) {
      j["model_type"] = "gpt_neox";
      j["hidden_act"] = "relu";
    });
    msg = error_of([&] { io::load_hf<neox_cpu>(f); });
    CHECK_MESSAGE(has(msg, "hidden_act 'relu'"), msg);
    fs::remove(f + "/config.json");
    msg = error_of([&] { io::load_hf<neox_cpu>(f); });
    CHECK_MESSAGE(has(msg, "config.json: cannot open"), msg);
  }
  SUBCASE("config.json describes other shapes than the file holds") {
    auto f = copy_fixture(dir, "hf_tiny_neox");
    edit_config(f, [](nlohmann::json& j) { j["intermediate_size"] = 48; });
    auto msg = error_of([&] { io::load_hf<neox_cpu>(f); });
    CHECK_MESSAGE(has(msg, "model.safetensors"), msg);
    CHECK_MESSAGE(has(msg, "dense_h_to_4h"), msg);
    CHECK_MESSAGE(has(msg, "config.json implies [48, 32]"), msg);
  }
}
