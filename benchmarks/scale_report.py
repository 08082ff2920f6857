#!/usr/bin/env python3
"""Data-parallel scaling: measures bench_scale on 1 and 2 ranks and projects 8 and 64 ranks.

    python3 benchmarks/scale_report.py --bench build/benchmarks/bench_scale [--rounds 2]
                                       [--out docs/results/scale.json]

Each configuration (model x preset x ranks x ZeRO-1) runs `rounds` times, the configurations
taking turns, one thread per rank; the median tokens/s is reported. The projection follows the
measured 1-rank step (weak scaling: the per-rank batch stays, so compute per step is constant)
plus a ring all-reduce of the gradients, which moves 2 (N - 1) / N x parameter bytes in and out
of every rank per step, at the stated link bandwidths, with no overlap of communication and
backward (the trainer reduces after the last micro-batch).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

CONFIGS = [  # (model, preset, batch per rank, seq, steps)
    ("teacher", "small", 8, 256, 20),
    ("student", "small", 8, 256, 20),
    ("teacher", "pythia-70m", 2, 256, 6),
]
# Link bandwidths for the projection (bytes/s, one direction), as the vendors state them.
LINKS = {
    "10 GbE": 1.25e9,
    "100 Gb/s InfiniBand EDR": 12.5e9,
    "400 Gb/s InfiniBand NDR": 50e9,
}


def run(bench, ranks, model, preset, batch, seq, steps, zero1):
    cmd = [bench, "--model", model, "--preset", preset, "--batch", str(batch), "--seq", str(seq),
           "--steps", str(steps), "--threads", "1"]
    if zero1:
        cmd.append("--zero1")
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "core"] + cmd
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="build/benchmarks/bench_scale")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="docs/results/scale.json")
    a = ap.parse_args()

    plan = []
    for model, preset, batch, seq, steps in CONFIGS:
        plan.append((1, model, preset, batch, seq, steps, False))
        plan.append((2, model, preset, batch, seq, steps, False))
        if model == "teacher":
            plan.append((2, model, preset, batch, seq, steps, True))
    runs = {p: [] for p in plan}
    for r in range(a.rounds):
        for p in plan:
            row = run(a.bench, *p)
            runs[p].append(row)
            print(f"round {r + 1}: {json.dumps(row)}", file=sys.stderr)

    measured = []
    for p, rows in runs.items():
        best = dict(rows[0])
        best["tokens_per_s"] = statistics.median(x["tokens_per_s"] for x in rows)
        best["step_ms"] = statistics.median(x["step_ms"] for x in rows)
        best["tokens_per_s_rounds"] = [x["tokens_per_s"] for x in rows]
        best["allreduce_share"] = [statistics.median(x["allreduce_share"][i] for x in rows) for i in range(p[0])]
        measured.append(best)

    def find(model, preset, ranks, zero1=False):
        return next(m for m in measured if m["model"] == model and m["preset"] == preset and m["ranks"] == ranks
                    and m["zero1"] == zero1)

    projection = []
    for model, preset, batch, seq, _ in CONFIGS:
        one = find(model, preset, 1)
        compute_s = one["step_ms"] / 1e3
        grad_bytes = one["param_mb"] * 1048576.0
        for n in (2, 8, 64):
            volume = 2 * (n - 1) / n * grad_bytes
            for link, bw in LINKS.items():
                comm_s = volume / bw
                projection.append({
                    "model": model, "preset": preset, "ranks": n, "link": link, "batch_per_rank": batch, "seq": seq,
                    "allreduce_bytes_per_rank": round(volume), "compute_s": round(compute_s, 4),
                    "allreduce_s": round(comm_s, 5), "efficiency": round(compute_s / (compute_s + comm_s), 4),
                    "tokens_per_s": round(n * batch * seq / (compute_s + comm_s)),
                })

    doc = {
        "command": "python3 benchmarks/scale_report.py --bench build/benchmarks/bench_scale --rounds %d" % a.rounds,
        "machine": "this project's CI kind: 2 cores, 1 thread per rank, ranks on one machine (shared memory)",
        "measured": measured,
        "projection_method": "weak scaling: measured 1-rank step + ring all-reduce of fp32 gradients "
                             "(2 (N-1)/N x parameter bytes per rank per step) at the link bandwidth, no overlap",
        "projection": projection,
    }
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")

    print("| model | preset | ranks | ZeRO-1 | tokens/s (rounds) | speed-up | all-reduce share (rank 0, 1) "
          "| optimizer state MB/rank | peak RSS MB/rank |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m in measured:
        one = find(m["model"], m["preset"], 1)
        print(f"| {m['model']} | {m['preset']} | {m['ranks']} | {'yes' if m['zero1'] else 'no'} | "
              f"{m['tokens_per_s']:.0f} ({', '.join('%.0f' % t for t in m['tokens_per_s_rounds'])}) | "
              f"{m['tokens_per_s'] / one['tokens_per_s']:.2f}x | "
              f"{', '.join('%.1f%%' % (100 * s) for s in m['allreduce_share'])} | "
              f"{', '.join('%.1f' % s for s in m['optimizer_state_mb'])} | "
              f"{', '.join('%.0f' % s for s in m['peak_rss_mb'])} |")
    print()
    print("| model | preset | ranks | link | all-reduce MB/rank/step | all-reduce s | efficiency | tokens/s |")
    print("|---|---|---|---|---|---|---|---|")
    for p in projection:
        if p["ranks"] == 2:
            continue
        print(f"| {p['model']} | {p['preset']} | {p['ranks']} | {p['link']} | "
              f"{p['allreduce_bytes_per_rank'] / 1048576:.1f} | {p['allreduce_s']:.4f} | {100 * p['efficiency']:.1f}% | "
              f"{p['tokens_per_s']} |")


if __name__ == "__main__":
    main()
