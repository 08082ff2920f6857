// hyena convert: a Hyena student's checkpoint with its long filters also in modal form
// (diagonal recurrences, nn/hyena_modal.hpp), which `hyena generate` then decodes at a constant
// cost per token. Prints each layer's relative filter error and the mean KL(exact || modal)
// of the next-token distributions over a token file (or over text the model writes itself).
#include <cmath>
#include <cstdio>
#include <memory>

#include <hyena/io/token_file.hpp>
#include <hyena/models/decoder.hpp>
#include <hyena/models/modal.hpp>
#include <hyena/train/generate.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "pipeline.hpp"

namespace hyena::cli {
namespace {

struct convert_args {
  std::string model, out, data;
  models::modal_options modal;
  index_t kl_tokens = 512;
  int threads = 0;
};

// Mean over positions of KL(p_exact || p_modal), both decoders fed the same tokens.
template <class M>
double modal_kl(const M& m, backend::host_context& ctx, const nn::hyena_modal_form<float>& form,
                const std::vector<std::int32_t>& tokens) {
  const index_t n = index_t(tokens.size()), V = m.config().vocab;
  models::decoder<M> exact(m, ctx, 1, n), modal(m, ctx, 1, n, &form);
  std::vector<float> a(static_cast<std::size_t>(V));
  double kl = 0;
  for (index_t t = 0; t < n; ++t) {
    const float* la = exact.step(ctx, std::span(&tokens[std::size_t(t)], 1));
    std::copy(la, la + V, a.begin());
    const float* lb = modal.step(ctx, std::span(&tokens[std::size_t(t)], 1));
    double ma = -INFINITY, mb = -INFINITY, za = 0, zb = 0, cross = 0;
    for (index_t v = 0; v < V; ++v) ma = std::max(ma, double(a[std::size_t(v)])), mb = std::max(mb, double(lb[v]));
    for (index_t v = 0; v < V; ++v) za += std::exp(a[std::size_t(v)] - ma), zb += std::exp(lb[v] - mb);
    const double la_z = ma + std::log(za), lb_z = mb + std::log(zb);
    for (index_t v = 0; v < V; ++v) {
      const double lpa = a[std::size_t(v)] - la_z;
      cross += std::exp(lpa) * (lpa - (lb[v] - lb_z));
    }
    kl += std::max(cross, 0.0);
  }
  return kl / double(std::max<index_t>(n, 1));
}

void run_convert(const convert_args& a) {
  HYENA_CHECK(std::filesystem::path(a.model).extension() == ".safetensors", "convert: --model must be one of our ",
              "checkpoints (a Hyena student's .safetensors), got ", a.model);
  const std::string arch = checkpoint_arch(a.model);
  auto ctx = make_context(a.threads);
  auto go = [&](auto tag) {
    using M = typename decltype(tag)::type;
    auto m = load_model<M>(a.model);
    const index_t len = a.modal.length > 0 ? a.modal.length : m.config().max_seq;
    std::printf("convert: %s (%s), %lld layers, filters of %lld samples -> %lld modes per channel\n", a.model.c_str(),
                arch.c_str(), (long long)m.config().layers, (long long)len, (long long)a.modal.modes);
    auto form = models::fit_modal_form(m, ctx, a.modal);
    for (std::size_t l = 0; l < form.filter_error.size(); ++l)
      std::printf("  layer %zu: relative filter error %.3e\n", l, form.filter_error[l]);
    std::vector<std::int32_t> tokens;
    if (!a.data.empty()) {
      io::token_file f = open_tokens(a.data, m.config().vocab);
      for (index_t i = 0; i < std::min<index_t>(f.size(), std::min(a.kl_tokens, len)); ++i) tokens.push_back(f.tokens()[i]);
    } else {  // the model's own text, from token 1 (llama2.c's BOS; any id works)
      tokens = train::generate(m, ctx, {1}, std::min(a.kl_tokens, len) - 1, train::sampling{.temperature = 1, .seed = 1});
    }
    const double kl = modal_kl(m, ctx, form, tokens);
    std::printf("  KL(exact || modal) = %.3e nats per token over %zu tokens%s\n", kl, tokens.size(),
                a.data.empty() ? " the model wrote" : "");
    std::filesystem::create_directories(std::filesystem::absolute(a.out).parent_path());
    train::save_checkpoint(a.out, m, nullptr, {{"hyena.modal_kl", std::to_string(kl)}}, arch, &form);
    std::printf("wrote %s\n", a.out.c_str());
  };
  if (arch == "hyena_gpt_neox") go(type_tag<hyena_gpt_neox>{});
  else if (arch == "hyena_llama") go(type_tag<hyena_llama>{});
  else HYENA_FAIL("convert: ", a.model, " is a ", arch, " model; only Hyena students have long filters to convert");
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto a = std::make_shared<convert_args>();
  auto* c = app.add_subcommand("convert", "write a Hyena student's filters as recurrences (constant-cost decoding)");
  c->add_option("--model", a->model, "a Hyena student checkpoint (.safetensors)")->required()->check(CLI::ExistingFile);
  c->add_option("--out", a->out, "the converted checkpoint")->required();
  c->add_option("--modal-order", a->modal.modes, "states per channel (d)")->capture_default_str();
  c->add_option("--length", a->modal.length, "filter length to fit (default: the model's max_seq)");
  c->add_option("--fit-len", a->modal.fit_len, "samples the residues are fitted on (default: all)");
  c->add_option("--data", a->data, "token file for the KL check (default: text the model writes)")->check(CLI::ExistingFile);
  c->add_option("--kl-tokens", a->kl_tokens, "tokens of the KL check")->capture_default_str();
  c->add_option("--threads", a->threads, "threads (default: all)");
  c->callback([a] { run_convert(*a); });
}

}  // namespace hyena::cli
