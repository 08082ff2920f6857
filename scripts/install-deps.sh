#!/usr/bin/env bash
# Installs hyena's build dependencies from Debian (run as root, or with sudo available).
#   bash scripts/install-deps.sh            g++ and the libraries: what the demo (README) needs
#   bash scripts/install-deps.sh --clang    also clang with its sanitizer runtimes, libFuzzer and LLVM's
#                                           OpenMP (the test, TSan and fuzz builds: scripts/test.sh,
#                                           test-tsan.sh, fuzz.sh)
set -euo pipefail
pkgs=(g++ cmake make libeigen3-dev libxsimd-dev doctest-dev libcli11-dev nlohmann-json3-dev gnuplot-nox openmpi-bin libopenmpi-dev)
if [ "${1:-}" = "--clang" ]; then
  pkgs+=(clang libclang-rt-14-dev libomp-14-dev)
elif [ -n "${1:-}" ]; then
  echo "install-deps.sh: unknown option $1 (only --clang)" >&2
  exit 2
fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "hyena: dependencies present (${pkgs[*]})"
