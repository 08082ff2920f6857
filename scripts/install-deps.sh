#!/usr/bin/env bash
# Installs hyena's build dependencies from Debian (run as root, or with sudo available).
set -euo pipefail
pkgs=(g++ cmake make libeigen3-dev libxsimd-dev doctest-dev libcli11-dev nlohmann-json3-dev gnuplot-nox openmpi-bin libopenmpi-dev)
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
