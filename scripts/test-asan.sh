#!/usr/bin/env bash
# The parsers of untrusted files (safetensors, HF folders, token files, tokenizers, llama2.c)
# under AddressSanitizer and UndefinedBehaviorSanitizer: no read outside a buffer on bad input.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHYENA_BUILD_EXAMPLES=OFF -DHYENA_BUILD_BENCHMARKS=OFF \
  -DHYENA_WITH_CUDA=OFF -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" >/dev/null
targets=$(cd tests/io && ls test_*.cpp | sed 's/^/io_/; s/\.cpp$//')
cmake --build build-asan -j"$(nproc)" --target $targets
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan -R '^io\.' -j"$(nproc)" --output-on-failure
