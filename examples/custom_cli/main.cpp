// hyena_ema: the `hyena` CLI with a user's model registered (examples/custom_cli/ema_models.hpp):
// `train --arch ema_gpt_neox` builds a GPT-NeoX model with the EMA mixer, and eval/generate load
// its checkpoints, the mixer's min_decay read back from the file. The built-in commands'
// sources are compiled with HYENA_CLI_MODELS set (examples/CMakeLists.txt); this one takes
// train, eval and generate, and a user's may take all of examples/cli/*.cpp instead of this file.
#include <cstdio>

#include <hyena/config.hpp>

#include "../cli/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"hyena_ema: the hyena CLI with the EMA mixer model (ema_gpt_neox) registered"};
  app.require_subcommand(1);
  hyena::cli::add_train_command(app);
  hyena::cli::add_eval_command(app);
  hyena::cli::add_generate_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const hyena::error& e) {
    std::fprintf(stderr, "hyena_ema: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hyena_ema: unexpected error: %s\n", e.what());
    return 2;
  }
  return 0;
}
