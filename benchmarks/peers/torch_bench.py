#!/usr/bin/python3
"""torch_bench.py: the PyTorch peer of bench_train and bench_operator (same shapes, same JSON keys).

  torch_bench.py --what train [--model teacher|hyena_student|both] [--hidden 128 --layers 4 --heads 4
                 --mlp 512 --seq 256 --batch 8 --vocab 256] [--threads 2] [--reps 5]
  torch_bench.py --what operator [--lengths 1024 4096 16384 65536] [--width 128] [--forward-only]
                 [--max-gb 8] [--threads 2] [--reps 5]

train: one JSON line per model, {"impl": "torch", "model", "threads", "train_tokens_per_s",
"forward_tokens_per_s", "train_step_ms", "peak_rss_mb", "params", ...}. A train step is forward +
cross-entropy + backward + AdamW step; forward runs in eval mode under torch.no_grad(). Times are
medians of --reps runs after one warm-up run (as bench_util.hpp's median_seconds).

peak_rss_mb: each model runs in a fresh process (this script re-runs itself per model), and the
figure is VmHWM (/proc/self/status, the process's peak resident set) at the end minus VmRSS just
before the model is built, i.e. what building, training and running the model added on top of
the Python + torch runtime (reported separately as base_rss_mb).

operator: the Hyena operator alone, batch 1, on (1, L, width): {"impl", "op": "hyena_operator",
"L", "width", "fwd_bwd_ms"} (forward + backward with input and parameter gradients), or with
--forward-only {"impl", "op", "L", "width", "fwd_ms"} under torch.no_grad(). Lengths whose
estimated memory exceeds --max-gb print a line with "skipped" instead. Their peak_rss_mb is the
process's VmHWM over its RSS before the first length (lengths run in ascending order, so it is
the peak of the longest length so far).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models as tm  # noqa: E402


def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def median_seconds(reps, fn):
    fn()  # warm-up
    t = []
    for _ in range(reps):
        a = time.perf_counter()
        fn()
        t.append(time.perf_counter() - a)
    return statistics.median(t)


def emit(d):
    print(json.dumps(d), flush=True)


def bench_train_one(a, name):
    torch.manual_seed(0)
    c = tm.Config(vocab=a.vocab, hidden=a.hidden, layers=a.layers, heads=a.heads, intermediate=a.mlp,
                  max_seq=a.seq, hyena_filter_order=64)
    base = status_kb("VmRSS")
    model = tm.CausalLM(c, "attention" if name == "teacher" else "hyena")
    opt = tm.adamw(model)
    g = torch.Generator().manual_seed(0)
    inp = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g)
    tgt = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g)

    def step():
        logits = model(inp)
        loss = F.cross_entropy(logits.view(-1, a.vocab), tgt.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    t_step = median_seconds(a.reps, step)
    model.eval()

    def fwd():
        with torch.no_grad():
            model(inp)

    t_fwd = median_seconds(a.reps, fwd)
    tokens = a.batch * a.seq
    emit({"impl": "torch", "model": name, "threads": torch.get_num_threads(),
          "train_tokens_per_s": round(tokens / t_step), "forward_tokens_per_s": round(tokens / t_fwd),
          "train_step_ms": round(t_step * 1e3, 2), "peak_rss_mb": round((status_kb("VmHWM") - base) / 1024, 1),
          "base_rss_mb": round(base / 1024, 1), "params": sum(p.numel() for p in model.parameters()),
          "torch": torch.__version__})


def operator_gb(L, width, forward_only):
    """Rough peak of one operator call in GB, in (L, width) float buffers: measured about 16 for
    forward-only (projections, FFTs at 2L in complex, the filter) and 57 for training."""
    return (20 if forward_only else 64) * L * width * 4 / 2**30


def bench_operator(a):
    base = status_kb("VmRSS")
    for L in sorted(a.lengths):
        need = operator_gb(L, a.width, a.forward_only)
        key = "fwd_ms" if a.forward_only else "fwd_bwd_ms"
        if need > a.max_gb:
            emit({"impl": "torch", "op": "hyena_operator", "L": L, "width": a.width, key: None,
                  "skipped": f"needs about {need:.1f} GB > --max-gb {a.max_gb}"})
            continue
        torch.manual_seed(0)
        c = tm.Config(hidden=a.width, heads=1, max_seq=L, hyena_filter_order=64)
        op = tm.HyenaOperator(c)
        x = torch.randn(1, L, a.width)
        if a.forward_only:
            def run():
                with torch.no_grad():
                    op(x)
        else:
            x.requires_grad_(True)
            dy = torch.randn(1, L, a.width)

            def run():
                x.grad = None
                op.zero_grad(set_to_none=True)
                op(x).backward(dy)
        a0 = time.perf_counter()
        run()  # warm-up, and a first timing to pick the repetitions (about 3 s in all)
        one = time.perf_counter() - a0
        reps = max(1, min(a.reps, int(3.0 / max(one, 1e-9))))
        t = []
        for _ in range(reps):
            a0 = time.perf_counter()
            run()
            t.append(time.perf_counter() - a0)
        emit({"impl": "torch", "op": "hyena_operator", "L": L, "width": a.width,
              key: round(statistics.median(t) * 1e3, 3), "threads": torch.get_num_threads(),
              "peak_rss_mb": round((status_kb("VmHWM") - base) / 1024, 1)})
        del op, x


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--what", choices=["train", "operator"], default="train")
    p.add_argument("--model", choices=["teacher", "hyena_student", "both"], default="both")
    for k, v in [("hidden", 128), ("layers", 4), ("heads", 4), ("mlp", 512), ("seq", 256), ("batch", 8),
                 ("vocab", 256), ("width", 128)]:
        p.add_argument("--" + k, type=int, default=v)
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    p.add_argument("--forward-only", action="store_true")
    p.add_argument("--max-gb", type=float, default=8.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.what == "operator":
        bench_operator(a)
    elif a.model == "both":  # a fresh process per model, so peak RSS is per model
        for m in ["teacher", "hyena_student"]:
            args = [sys.executable, os.path.abspath(__file__)] + [x for x in sys.argv[1:]] + ["--model", m]
            subprocess.run(args, check=True)
    else:
        bench_train_one(a, a.model)


if __name__ == "__main__":
    main()
