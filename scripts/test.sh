#!/usr/bin/env bash
# The test command: installs deps, builds everything once (library tests, the CLI, examples;
# the benchmarks too, at -O0 uninstrumented, only to check they compile) under AddressSanitizer +
# UndefinedBehaviorSanitizer in build-test/, and runs every
# test there: no read or write outside a buffer, no leak, no undefined behaviour, on good and bad
# input alike. -O1 with line tables: about half the compile time of -O2 -g for these template-heavy
# programs, and file:line in every report. HYENA_TEST_RELEASE=1 runs the same tests on a plain
# Release build (build-release/) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
if [ "${HYENA_TEST_RELEASE:-0}" = 1 ]; then
  dir=build-release
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release ${HYENA_CMAKE_ARGS:-} >/dev/null
else
  dir=build-test
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=None -DHYENA_BENCHMARK_COMPILE_CHECK=ON ${HYENA_CMAKE_ARGS:-} \
    -DCMAKE_CXX_FLAGS="-O1 -g1 -DNDEBUG -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
    >/dev/null
  export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
fi
cmake --build "$dir" -j"$jobs"
ctest --test-dir "$dir" -j"$jobs" --output-on-failure --timeout 3000
