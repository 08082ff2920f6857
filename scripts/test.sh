#!/usr/bin/env bash
# The test command: installs deps, configures, builds (Release, all cores), runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${HYENA_CMAKE_ARGS:-}
cmake --build build -j"$jobs"
ctest --test-dir build -j"$jobs" --output-on-failure --timeout 1500
