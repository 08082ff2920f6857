#!/usr/bin/env bash
# setup_torch_venv.sh: a virtual environment with current PyTorch from PyPI, the peer that
# benchmarks/compare.py measures hyena against on the CPU (eager, SDPA and torch.compile columns).
#
#   bash benchmarks/peers/setup_torch_venv.sh [VENV_DIR]     (default: benchmarks/peers/.venv-torch)
#
# Environment: PYTHON (the interpreter that creates the venv, default python3), TORCH_SPEC (what to
# install, default "torch"; e.g. "torch==2.5.1" to pin).
#
# Prefers the CPU-only wheel from https://download.pytorch.org/whl/cpu (about 200 MB) when that index is
# reachable; otherwise plain PyPI, whose Linux wheel pulls the nvidia-* CUDA packages (several GB; they
# are not loaded on the CPU). Idempotent: if the venv's python already imports torch it does nothing.
# Not run by CI (the wheel is too big); the last line printed is the interpreter for
# `compare.py --torch-python`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-$here/.venv-torch}"
python="${PYTHON:-python3}"
spec="${TORCH_SPEC:-torch}"
cpu_index="https://download.pytorch.org/whl/cpu"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "setup_torch_venv.sh: torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)') already in $venv" >&2
  echo "$venv/bin/python"
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "setup_torch_venv.sh: creating $venv with $("$python" --version 2>&1) ($python)" >&2
  "$python" -m venv "$venv"
fi
# Keep the venv out of git wherever it is (as Python 3.13's venv does by itself).
[ -e "$venv/.gitignore" ] || echo "*" > "$venv/.gitignore"
vpy="$venv/bin/python"
"$vpy" -m pip install --quiet --upgrade pip >&2 || true

# Is the CPU-only index reachable? (a short probe; pip itself would retry for minutes)
if "$vpy" - "$cpu_index" <<'EOF' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/torch/", timeout=10).read(1)
EOF
then
  echo "setup_torch_venv.sh: installing $spec (CPU-only wheel) from $cpu_index" >&2
  "$vpy" -m pip install --index-url "$cpu_index" $spec >&2
else
  echo "setup_torch_venv.sh: $cpu_index unreachable; installing $spec from PyPI (with its CUDA packages)" >&2
  "$vpy" -m pip install $spec >&2
fi
# numpy: torch warns on import without it; small.
"$vpy" -m pip install --quiet numpy >&2 || true

"$vpy" -c "import torch; print('setup_torch_venv.sh: torch', torch.__version__, 'in', torch.__file__)" >&2
echo "$vpy"
