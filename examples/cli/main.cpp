// hyena: the command-line tool. `hyena --help` lists the subcommands.
#include <cstdio>

#include <hyena/config.hpp>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"hyena: train transformer teachers and distill them into Hyena students"};
  app.require_subcommand(1);
  hyena::cli::add_prepare_command(app);
  hyena::cli::add_train_command(app);
  hyena::cli::add_distill_command(app);
  hyena::cli::add_eval_command(app);
  hyena::cli::add_generate_command(app);
  hyena::cli::add_convert_command(app);
  hyena::cli::add_demo_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const hyena::error& e) {
    std::fprintf(stderr, "hyena: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hyena: unexpected error: %s\n", e.what());
    return 2;
  }
  return 0;
}
