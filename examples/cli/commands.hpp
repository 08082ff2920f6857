// commands.hpp: each `hyena` subcommand lives in its own cmd_<name>.cpp and adds itself here.
#pragma once
#include <CLI/CLI.hpp>

namespace hyena::cli {
void add_prepare_command(CLI::App& app);   // text -> token files
void add_train_command(CLI::App& app);     // a teacher or student from scratch
void add_distill_command(CLI::App& app);   // teacher -> Hyena student
void add_eval_command(CLI::App& app);      // loss / perplexity of a checkpoint
void add_generate_command(CLI::App& app);  // sampling from a checkpoint
void add_convert_command(CLI::App& app);   // a Hyena student's filters as recurrences
void add_demo_command(CLI::App& app);      // the whole pipeline, with a report
}  // namespace hyena::cli
