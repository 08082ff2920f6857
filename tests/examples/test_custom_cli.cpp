// A user's mixer model through the CLI's model dispatch (examples/cli/models.hpp), registered
// as a user's own CLI registers it (examples/custom_cli/ema_models.hpp): its hparams are
// written to the checkpoint and read back, and the model loads with identical logits.
#include <cstring>
#include <filesystem>
#include <type_traits>
#include <vector>

// Found from examples/cli/models.hpp, which includes it.
#define HYENA_CLI_MODELS "../custom_cli/ema_models.hpp"
#include "../../examples/cli/models.hpp"
#include "../support/model_check.hpp"

using namespace hyena;

namespace {
using ema_model = models::with_mixer<cli::gpt_neox, example::ema_mixer>;

std::string temp_file(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("hyena_test_custom_cli_" + name + ".safetensors");
  std::filesystem::remove(p);
  return p.string();
}

// The (batch, seq, vocab) logits of `m` on `tokens`, as a flat copy.
template <class M>
std::vector<float> logits_of(M& m, const tensor<std::int32_t>& tokens) {
  backend::host_context ctx;
  m.reserve(tokens.shape().dims[0], tokens.shape().dims[1], models::mode::infer);
  auto l = m.forward(ctx, tokens.v());
  return std::vector<float>(l.data, l.data + l.numel());
}

ema_model make_model() {
  models::lm_config<example::ema_hparams> c(models::gpt_neox_config(64, 16, 2, 2, 32, 16), {.min_decay = 0.5});
  ema_model m(c);
  rng r(7);
  m.init(r);
  return m;
}
}  // namespace

TEST_CASE("custom CLI: the user mixer's hparams go to JSON under \"mixer\" and come back") {
  auto m = make_model();
  auto j = models::to_json(m.config());
  CHECK(j.at("mixer").at("min_decay").get<double>() == 0.5);
  CHECK(models::config_from_json<ema_model::config_type>(j).mixer.min_decay == 0.5);
  j["mixer"]["min_decay"] = 1.5;  // the mixer's validate() runs when the config is read
  CHECK_THROWS_WITH_AS(models::config_from_json<ema_model::config_type>(j),
                       doctest::Contains("min_decay must be in [0, 1)"), error);
}

TEST_CASE("custom CLI: a registered user model loads from its checkpoint with its hparams and identical logits") {
  static_assert(std::is_same_v<ema_model::mixer_hparams, example::ema_hparams>);
  CHECK(cli::known_archs() == "gpt_neox, llama, hyena_gpt_neox, hyena_llama, ema_gpt_neox");
  auto m = make_model();
  const auto tokens = testing::random_tokens(2, 16, 64, 3);
  const auto expected = logits_of(m, tokens);
  const std::string path = temp_file("ema");
  train::save_checkpoint(path, m, nullptr, {}, "ema_gpt_neox");
  CHECK(train::checkpoint_config<ema_model::config_type>(path).mixer.min_decay == 0.5);

  bool loaded = false;
  cli::with_any_model(path, [&](auto& got, const std::string& arch) {
    CHECK(arch == "ema_gpt_neox");
    if constexpr (std::is_same_v<std::decay_t<decltype(got)>, ema_model>) {
      loaded = true;
      CHECK(got.config().mixer.min_decay == 0.5);
      const auto actual = logits_of(got, tokens);
      REQUIRE(actual.size() == expected.size());
      CHECK(std::memcmp(actual.data(), expected.data(), actual.size() * sizeof(float)) == 0);
    }
  });
  CHECK(loaded);

  // The hparam matters: the same weights with the default min_decay give other logits.
  ema_model defaults(models::model_config(m.config()));
  CHECK(defaults.config().mixer.min_decay == 0.0);
  train::load_checkpoint(path, defaults);
  CHECK(logits_of(defaults, tokens) != expected);
  std::filesystem::remove(path);
}

TEST_CASE("custom CLI: a checkpoint naming an unregistered architecture fails with one error naming it and the file") {
  auto m = make_model();
  const std::string path = temp_file("unregistered");
  train::save_checkpoint(path, m, nullptr, {}, "ema_llama");
  bool called = false;
  std::string message;
  try {
    cli::with_any_model(path, [&](auto&, const std::string&) { called = true; });
  } catch (const error& e) {
    message = e.what();
  }
  CHECK_FALSE(called);
  CHECK(message.find("checkpoint " + path) != std::string::npos);
  CHECK(message.find("unknown architecture 'ema_llama'") != std::string::npos);
  CHECK(message.find("ema_gpt_neox") != std::string::npos);  // what this build knows
  CHECK(message.find('\n') == std::string::npos);
  std::filesystem::remove(path);
}
