// duplicate_arch: a user registration (HYENA_CLI_MODELS, examples/cli/models.hpp) that reuses the
// built-in name "llama" for another model. Dispatch by name would silently load whichever type
// comes first, so the build must stop with models.hpp's static_assert. Built by the
// compile_fail.duplicate_arch test (tests/CMakeLists.txt).
#define HYENA_CLI_MODELS "compile_fail/duplicate_arch_models.hpp"
#include "cli/models.hpp"

int main() { return hyena::cli::known_archs().empty() ? 1 : 0; }
