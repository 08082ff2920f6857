#!/usr/bin/env python3
"""ab_commits.py: one benchmark built at two commits, the two binaries run in alternation.

    python3 benchmarks/ab_commits.py OLD [NEW] [--rounds 30] [--work DIR] -- BENCH [ARGS...]

    e.g. python3 benchmarks/ab_commits.py d2eaac8~1 d2eaac8 --rounds 10 -- bench_train --reps 7

OLD and NEW are commits (NEW defaults to HEAD); BENCH is a target of benchmarks/ that prints JSON
lines (bench_train, bench_operator). Each commit's tree is exported with `git archive` and its
BENCH built in Release under DIR/<commit> (default /tmp/hyena-ab; a build is reused when its
binary exists). Then each round runs both, each a fresh process, old first in odd rounds and new
first in even ones, so that any effect of running second cancels; use an even number of rounds.
On this project's 2-core VMs single runs move by 10-30% (docs/results.md section 5), so only the
alternation's medians and the spread of the per-round ratios are worth quoting, and even those
are uncertain by a few percent: two A/A runs of 10 rounds (one commit against itself, teacher
step) gave 0.972 and 0.964 on the Zen 4 VM of 2026-12-02, and on the same VM later 16 rounds
read +6-8% for a change that 60 rounds put at -3% (docs/results.md section 5, run N). Hence the
default of 30 rounds; a round of bench_train takes a few seconds.

Prints, for every timing field of every JSON line (a field ending in _ms: lower is better), the
median of each side, the median of the per-round ratios old / new (above 1: NEW is faster) and
those ratios, as a markdown table.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git(*args):
    return subprocess.run(["git", "-C", ROOT, *args], check=True, capture_output=True, text=True).stdout.strip()


def build(commit, target, work):
    """The path of `target` built at `commit` (a full hash), building it when missing."""
    src = os.path.join(work, commit[:12], "src")
    bld = os.path.join(work, commit[:12], "build")
    exe = os.path.join(bld, "benchmarks", target)
    if os.path.exists(exe):
        return exe
    os.makedirs(src, exist_ok=True)
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", src], input=archive, check=True)
    print(f"ab_commits: building {target} at {commit[:12]} in {bld}", file=sys.stderr)
    subprocess.run(["cmake", "-S", src, "-B", bld, "-DCMAKE_BUILD_TYPE=Release", "-DHYENA_BUILD_TESTS=OFF",
                    "-DHYENA_BUILD_EXAMPLES=OFF", "-DHYENA_WITH_CUDA=OFF", "-DHYENA_WITH_MPI=OFF"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", bld, "--target", target, "-j", str(os.cpu_count() or 1)], check=True,
                   stdout=subprocess.DEVNULL)
    return exe


def run(exe, args):
    """{(row key, field): value} for the timing fields of every JSON line `exe` prints."""
    out = subprocess.run([exe, *args], check=True, capture_output=True, text=True).stdout
    values = {}
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        key = " ".join(f"{k}={v}" for k, v in row.items() if k in ("model", "op", "L"))
        for field, v in row.items():
            if field.endswith("_ms") and isinstance(v, (int, float)):
                values[(key, field)] = float(v)
    return values


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        sys.exit("ab_commits.py: give the benchmark after --, e.g. -- bench_train --reps 7")
    cut = argv.index("--")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("old")
    p.add_argument("new", nargs="?", default="HEAD")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--work", default="/tmp/hyena-ab")
    a = p.parse_args(argv[:cut])
    bench = argv[cut + 1:]
    if not bench:
        sys.exit("ab_commits.py: no benchmark after --")
    commits = [git("rev-parse", "--verify", c + "^{commit}") for c in (a.old, a.new)]
    exes = [build(c, bench[0], a.work) for c in commits]
    samples = [[], []]
    for r in range(a.rounds):
        for side in ((0, 1) if r % 2 == 0 else (1, 0)):
            samples[side].append(run(exes[side], bench[1:]))
        print(f"ab_commits: round {r + 1}/{a.rounds} done", file=sys.stderr)
    print(f"`{' '.join(bench)}`, {a.rounds} alternating rounds; old {commits[0][:10]}, new {commits[1][:10]}\n")
    print("| row | field | old (median) | new (median) | old / new (median) | per round |")
    print("|---|---|---|---|---|---|")
    for key in samples[0][0]:
        old = [s[key] for s in samples[0]]
        new = [s[key] for s in samples[1]]
        ratios = [o / n for o, n in zip(old, new)]
        print(f"| {key[0]} | {key[1]} | {statistics.median(old):.2f} | {statistics.median(new):.2f} | "
              f"{statistics.median(ratios):.3f} | {' '.join(f'{x:.2f}' for x in ratios)} |")


if __name__ == "__main__":
    main()
