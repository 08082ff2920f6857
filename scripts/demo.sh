#!/usr/bin/env bash
# The main job: installs deps, builds, and runs the distillation demo
#   teacher (GPT-NeoX) -> Hyena student from scratch vs distilled, report in runs/demo/.
# Extra arguments go to `hyena demo` (e.g. --preset tiny, --corpus FILE, --out runs/other).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
data="${HYENA_DATA_DIR:-$(pwd)/../shared/data}"
if [ ! -f "$data/wikitext-2/wiki.train.tokens" ] && [[ " $* " != *" --corpus "* ]]; then
  # No WikiText-2 here: fall back to a plain-text corpus from Debian.
  if ! dpkg -s fortunes >/dev/null 2>&1; then
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq fortunes
  fi
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${HYENA_CMAKE_ARGS:-} >/dev/null
cmake --build build -j"$(nproc)" --target hyena_cli
export HYENA_DATA_DIR="$data"
defaults=()
[[ " $* " == *" --preset "* ]] || defaults+=(--preset small)
[[ " $* " == *" --out "* ]] || defaults+=(--out runs/demo)
exec ./build/hyena demo "${defaults[@]}" "$@"
