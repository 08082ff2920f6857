#!/usr/bin/env bash
# Training speed beside a competing process (docs/results.md section 5, issue 15).
#
#   bash benchmarks/under_load.sh [BUILD_DIR] [STEPS] [ROUNDS]
#
# Times `hyena train --preset small` (GPT-NeoX, width 128, 4 layers, batch 8 x seq 256) for STEPS
# steps on this machine's cores, alone and beside one busy process (a shell loop that never
# sleeps, as another user's job would be), under OpenMP wait policies:
#   hyena default    nothing set: the CLI restarts itself with OMP_WAIT_POLICY=passive when other
#                    tasks are running as it starts, else keeps libgomp's default (main.cpp)
#   libgomp default  GOMP_SPINCOUNT=300000, what libgomp does when nothing is set: spin about
#                    300,000 times at a barrier, then sleep (the CLI's behaviour before)
#   active           OMP_WAIT_POLICY=active: spin without end
#   short spin       GOMP_SPINCOUNT=10000: spin briefly, then sleep
# and with one thread. Rounds alternate the configurations; the table gives each one's median
# seconds and its slowdown against the same policy alone. Run it on an otherwise idle machine.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
steps=${2:-10}
rounds=${3:-3}
hyena=$build/hyena
[[ -x $hyena ]] || { echo "under_load: $hyena not found (build the hyena_cli target)" >&2; exit 1; }
work=$(mktemp -d)
busy_pid=""
cleanup() {
  [[ -n $busy_pid ]] && kill "$busy_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
for i in $(seq 1 4000); do echo "line $i: the quick brown fox jumps over the lazy dog $((i % 13)) times."; done > text.txt
"$hyena" prepare --input text.txt --output train.tok > /dev/null
threads_all=$(nproc)

# One timed run: $1 label, $2 threads, then environment assignments.
time_run() {
  local label=$1 threads=$2
  shift 2
  local t0 t1
  t0=$(date +%s.%N)
  env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$@" "$hyena" train --arch gpt_neox --preset small --train train.tok \
    --out run --steps "$steps" --batch 8 --seq 256 --no-resume --threads "$threads" > /dev/null 2> err.txt ||
    { cat err.txt >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$label $(echo "$t1 - $t0" | bc)" >> times.txt
}

configs=("hyena default|$threads_all|" "libgomp default|$threads_all|GOMP_SPINCOUNT=300000"
         "active|$threads_all|OMP_WAIT_POLICY=active" "short spin|$threads_all|GOMP_SPINCOUNT=10000" "one thread|1|")
for r in $(seq 1 "$rounds"); do
  for load in alone beside; do
    if [[ $load == beside ]]; then
      bash -c 'while :; do :; done' &
      busy_pid=$!
    fi
    for c in "${configs[@]}"; do
      IFS='|' read -r name threads envs <<< "$c"
      # shellcheck disable=SC2086
      time_run "$load|$name" "$threads" $envs
    done
    if [[ -n $busy_pid ]]; then
      kill "$busy_pid"
      wait "$busy_pid" 2> /dev/null || true
      busy_pid=""
    fi
  done
  echo "round $r of $rounds done" >&2
done

python3 - "$steps" "$rounds" "$threads_all" << 'EOF'
import collections, statistics, sys
steps, rounds, cores = sys.argv[1:4]
runs = collections.defaultdict(list)
for line in open("times.txt"):
    key, secs = line.rsplit(" ", 1)
    runs[key].append(float(secs))
print(f"hyena train --preset small, {steps} steps, batch 8 x seq 256, {cores} cores, median of {rounds} rounds")
print()
print("| policy | threads | alone (s) | beside 1 busy process (s) | slowdown | every round beside (s) |")
print("|---|---|---|---|---|---|")
for name in ["hyena default", "libgomp default", "active", "short spin", "one thread"]:
    a, b = statistics.median(runs[f"alone|{name}"]), statistics.median(runs[f"beside|{name}"])
    threads = 1 if name == "one thread" else cores
    every = ", ".join(f"{x:.1f}" for x in runs[f"beside|{name}"])
    print(f"| {name} | {threads} | {a:.2f} | {b:.2f} | {b / a:.2f}x | {every} |")
EOF
