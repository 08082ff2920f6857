#!/usr/bin/env bash
# A failing rank ends the whole data-parallel job with a message, not a hang.
# Usage: mpi_failure_test.sh HYENA_BINARY RANK_DIES_BINARY WORK_DIR   (mpirun on PATH)
#  1. `hyena train` with a missing --train file on rank 1 only (mpirun's MPMD form gives each
#     rank its own arguments): rank 1 reports the file and aborts the job; rank 0, already
#     waiting for rank 1 in the trainer's start-up broadcast, is ended too.
#  2. A rank killed by SIGKILL mid-run (mpi_rank_dies): mpirun notices and ends rank 0, which
#     was waiting in the next gradient all-reduce.
# Each must end within 60 s (timeout's status 124 would mean a hang) with a non-zero status.
set -uo pipefail
hyena=$1
dies=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
fail() { echo "mpi failure test FAILED: $*" >&2; exit 1; }
mpirun=(mpirun --oversubscribe)

for i in $(seq 1 100); do echo "line $i: the quick brown fox jumps over the lazy dog."; done > text.txt
"$hyena" prepare --input text.txt --output train.tok > /dev/null || fail "prepare"
args=(train --arch gpt_neox --preset tiny --steps 50 --batch 2 --seq 32 --out run)

start=$(date +%s)
timeout 60 "${mpirun[@]}" -np 1 "$hyena" "${args[@]}" --train train.tok : \
  -np 1 "$hyena" "${args[@]}" --train missing.tok > bad_path.out 2>&1
status=$?
cat bad_path.out
[[ $status -ne 124 ]] || fail "a missing file on rank 1 left the job hanging"
[[ $status -ne 0 ]] || fail "a missing file on rank 1 exited with status 0"
grep -q "error (rank 1 of 2): train: --train file missing.tok not found" bad_path.out ||
  fail "no message naming rank 1 and the missing file"
[[ ! -e run/model.safetensors ]] || fail "the failed job wrote a model"
echo "bad path on rank 1: status $status after $(( $(date +%s) - start )) s"

start=$(date +%s)
timeout 60 "${mpirun[@]}" -np 2 "$dies" > killed.out 2>&1
status=$?
cat killed.out
[[ $status -ne 124 ]] || fail "a killed rank left the job hanging"
[[ $status -ne 0 ]] || fail "a killed rank exited with status 0"
grep -q "killing itself" killed.out || fail "rank 1 never reached its SIGKILL"
grep -q "the run finished" killed.out && fail "rank 0 finished a run its peer had left"
echo "rank 1 killed: status $status after $(( $(date +%s) - start )) s"
echo "mpi failure test passed"
