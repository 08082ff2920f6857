#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer (g++): no read or write
# outside a buffer, no leak, no undefined behaviour, on good and bad input alike. The install.*
# packaging checks are left out (they configure separate projects and test no code of their own).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# -O1 -g1 (line tables only): about half the compile time of -O2 -g for these template-heavy
# programs, and still file:line in every report; NDEBUG as in the Release tests.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=None -DHYENA_BUILD_EXAMPLES=OFF -DHYENA_BUILD_BENCHMARKS=OFF \
  -DHYENA_WITH_CUDA=OFF -DCMAKE_CXX_FLAGS="-O1 -g1 -DNDEBUG -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" >/dev/null
cmake --build build-asan -j"$(nproc)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan -E '^install\.' -j"$(nproc)" --output-on-failure --timeout 3000
