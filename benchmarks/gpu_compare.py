#!/usr/bin/env python3
"""gpu_compare.py: the CUDA backend against PyTorch on the same GPU, in one run (issue 13's table).

  python3 benchmarks/gpu_compare.py --bench build-gpu/benchmarks/bench_cuda [--quick] [--out docs/results/gpu.json]

Rows (every one a fresh process of each side, alternating, hyena first):
  1. training step at Pythia-70M's shapes (6 layers, width 512, 8 heads, MLP 2048, vocab 50304,
     batch 8, seq 2048), the GPT-NeoX teacher and its Hyena student, fp32 and TF32; PyTorch eager and
     SDPA attention (the student has no attention: one PyTorch column);
  2. the Hyena operator forward + backward, width 512, L = 1K..64K, against the same operator in
     PyTorch and against PyTorch's causal SDPA attention (8 heads) at the same L;
  3. the long convolution alone, batch 64, width 768, L = 1K..32K, against torch.fft (rfft, product,
     irfft, PyTorch's natural (batch, width, L) layout).
Ratios are PyTorch time / hyena time (> 1: hyena faster). Achieved TFLOP/s for the training step
counts model FLOPs: 6 x (parameters outside the embedding) x tokens, plus, for the teacher, the causal
attention's 6 x layers x seq x width x tokens (forward 2 products of half the L x L scores, x3 for
backward); the Hyena student's convolutions are not counted (FFT work is not matrix FLOPs).
--quick shrinks everything (batch 2, seq 512, L up to 4K) for a first smoke run.
Writes every raw line and the tables' numbers to --out (JSON) and prints the tables as markdown.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peers", "torch_bench.py")


def run_lines(cmd):
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout + r.stderr, file=sys.stderr)
        return [{"error": (r.stderr or r.stdout).strip().splitlines()[-1:] or ["exit %d" % r.returncode],
                 "cmd": " ".join(cmd)}]
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def ratio(peer_ms, ours_ms):
    return round(peer_ms / ours_ms, 3) if peer_ms and ours_ms else None


def train_flops(line, s):
    tokens = s["batch"] * s["seq"]
    non_embedding = line["params"] - s["vocab"] * s["hidden"]  # the unembedding stays in: it is a product
    f = 6 * non_embedding * tokens
    if line["model"] == "teacher":
        f += 6 * s["layers"] * s["seq"] * s["hidden"] * tokens
    return f


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bench", required=True, help="the bench_cuda binary")
    p.add_argument("--python", default=sys.executable, help="the python that has PyTorch with CUDA")
    p.add_argument("--out", default=os.path.join(HERE, "..", "docs", "results", "gpu.json"))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--only", choices=["train", "operator", "conv"], nargs="*", default=["train", "operator", "conv"])
    a = p.parse_args()

    s = dict(hidden=512, layers=6, heads=8, mlp=2048, seq=2048, batch=8, vocab=50304)
    op_lengths = [1024, 4096, 16384, 65536]
    conv_lengths = [1024, 4096, 16384, 32768]
    conv_batch, conv_width, op_width = 64, 768, 512
    if a.quick:
        s.update(seq=512, batch=2)
        op_lengths, conv_lengths, conv_batch = [1024, 4096], [1024, 4096], 8
    shape = [x for k, v in s.items() for x in ("--" + k, str(v))]
    reps = ["--reps", str(a.reps)]
    out = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "shape": s, "raw": [], "train": [], "operator": [],
           "conv": []}

    if "train" in a.only:
        for tf32 in (False, True):
            flag = ["--tf32"] if tf32 else []
            for model in ("teacher", "hyena_student"):
                ours = run_lines([a.bench, "--what", "train", "--model", model] + shape + reps + flag)
                peers = {}
                for attn in (["eager", "sdpa"] if model == "teacher" else ["eager"]):
                    peers[attn] = run_lines([a.python, PEER, "--device", "cuda", "--what", "train", "--model", model,
                                             "--attention", attn] + shape + reps + flag)
                out["raw"] += ours + sum(peers.values(), [])
                o = ours[0]
                row = {"model": model, "tf32": tf32, "hyena_ms": o.get("train_step_ms")}
                if "params" in o and o.get("train_step_ms"):
                    row["hyena_tflops"] = round(train_flops(o, s) / (o["train_step_ms"] * 1e-3) / 1e12, 2)
                for attn, lines in peers.items():
                    ms = lines[0].get("train_step_ms")
                    row[f"torch_{attn}_ms"] = ms
                    row[f"ratio_vs_{attn}"] = ratio(ms, row["hyena_ms"])
                out["train"].append(row)

    if "operator" in a.only:
        lengths = [str(L) for L in op_lengths]
        ours = run_lines([a.bench, "--what", "operator", "--width", str(op_width), "--lengths"] + lengths + reps)
        torch_op = run_lines([a.python, PEER, "--device", "cuda", "--what", "operator", "--width", str(op_width),
                              "--lengths"] + lengths + reps)
        sdpa = run_lines([a.python, PEER, "--device", "cuda", "--what", "attention", "--width", str(op_width),
                          "--heads", "8", "--lengths"] + lengths + reps)
        out["raw"] += ours + torch_op + sdpa
        by_l = lambda lines: {d.get("L"): d for d in lines}  # noqa: E731
        t, sd = by_l(torch_op), by_l(sdpa)
        for d in ours:
            L = d.get("L")
            row = {"L": L, "hyena_ms": d.get("fwd_bwd_ms"), "torch_ms": t.get(L, {}).get("fwd_bwd_ms"),
                   "sdpa_ms": sd.get(L, {}).get("fwd_bwd_ms")}
            row["ratio_vs_torch"] = ratio(row["torch_ms"], row["hyena_ms"])
            row["ratio_vs_sdpa"] = ratio(row["sdpa_ms"], row["hyena_ms"])
            out["operator"].append(row)

    if "conv" in a.only:
        lengths = [str(L) for L in conv_lengths]
        cshape = ["--batch", str(conv_batch), "--width", str(conv_width), "--lengths"] + lengths
        ours = run_lines([a.bench, "--what", "conv"] + cshape + reps)
        peer = run_lines([a.python, PEER, "--device", "cuda", "--what", "conv"] + cshape + reps)
        out["raw"] += ours + peer
        for d in ours:
            L = d.get("L")
            pf = next((x["fwd_ms"] for x in peer if x.get("L") == L and "fwd_ms" in x), None)
            pb = next((x["fwd_bwd_ms"] for x in peer if x.get("L") == L and "fwd_bwd_ms" in x), None)
            out["conv"].append({"L": L, "hyena_fwd_ms": d.get("fwd_ms"), "torch_fwd_ms": pf,
                                "ratio_fwd": ratio(pf, d.get("fwd_ms")), "hyena_fwd_bwd_ms": d.get("fwd_bwd_ms"),
                                "torch_fwd_bwd_ms": pb, "ratio_fwd_bwd": ratio(pb, d.get("fwd_bwd_ms"))})

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"# written to {a.out}\n")
    if out["train"]:
        print("| model | TF32 | hyena ms | hyena TFLOP/s | torch eager ms | ratio | torch SDPA ms | ratio |")
        print("|---|---|---|---|---|---|---|---|")
        for r in out["train"]:
            print(f"| {r['model']} | {r['tf32']} | {r['hyena_ms']} | {r.get('hyena_tflops')} | {r.get('torch_eager_ms')} "
                  f"| {r.get('ratio_vs_eager')} | {r.get('torch_sdpa_ms', '-')} | {r.get('ratio_vs_sdpa', '-')} |")
    if out["operator"]:
        print("\n| L | hyena operator ms | torch operator ms | ratio | torch SDPA attention ms | ratio |")
        print("|---|---|---|---|---|---|")
        for r in out["operator"]:
            print(f"| {r['L']} | {r['hyena_ms']} | {r['torch_ms']} | {r['ratio_vs_torch']} | {r['sdpa_ms']} "
                  f"| {r['ratio_vs_sdpa']} |")
    if out["conv"]:
        print("\n| L | hyena fwd ms | torch.fft fwd ms | ratio | hyena fwd+bwd ms | torch fwd+bwd ms | ratio |")
        print("|---|---|---|---|---|---|---|")
        for r in out["conv"]:
            print(f"| {r['L']} | {r['hyena_fwd_ms']} | {r['torch_fwd_ms']} | {r['ratio_fwd']} | {r['hyena_fwd_bwd_ms']} "
                  f"| {r['torch_fwd_bwd_ms']} | {r['ratio_fwd_bwd']} |")


if __name__ == "__main__":
    main()
