#!/usr/bin/python3
"""torch_bench.py: the PyTorch peer of bench_train and bench_operator (same shapes, same JSON keys).

  torch_bench.py --what train [--model teacher|hyena_student|both] [--hidden 128 --layers 4 --heads 4
                 --mlp 512 --seq 256 --batch 8 --vocab 256] [--threads 2] [--reps 5]
  torch_bench.py --what operator [--lengths 1024 4096 16384 65536] [--width 128] [--forward-only]
                 [--max-gb 8] [--threads 2] [--reps 5]
  torch_bench.py --what conv      [--lengths ...] [--batch B] [--width W]      (the long convolution alone)
  torch_bench.py --what attention [--lengths ...] [--width 512] [--heads 8]    (SDPA attention alone)
  every mode: [--device cpu|cuda] [--attention eager|sdpa] [--compile] [--tf32]
  train only: [--autocast bf16]

A run that fails (torch.compile unable to build on this machine, --attention sdpa or --compile on
PyTorch 1.x) prints the traceback and then one last stderr line "torch_bench.py: failed: REASON",
and exits with status 3 (benchmarks/compare.py shows REASON in that column).

--device cuda runs on GPU 0 and times with the device synchronised (peak memory is then
torch.cuda.max_memory_allocated, "peak_cuda_mb"); --attention sdpa runs the teacher's attention through
F.scaled_dot_product_attention (PyTorch >= 2.0); --compile wraps the model (or operator) in
torch.compile; --tf32 allows TF32 products on the GPU (torch.backends.cuda.matmul.allow_tf32);
--autocast bf16 runs the train mode's forward and loss (and so the backward's products) under
torch.autocast(dtype=torch.bfloat16), PyTorch's mixed precision: products and activations in bf16,
the parameters, their gradients and AdamW in fp32 (the peer of bench_train --matmul-precision medium).
conv: fftconv (rfft at 2L, product, irfft) on (batch, width, L), PyTorch's natural layout, forward
("fwd_ms") and forward + backward to the input and the filter ("fwd_bwd_ms"). attention: causal SDPA
on (1, heads, L, width / heads) forward + backward ("fwd_bwd_ms"), the reference point for the Hyena
operator at the same L.

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


DEVICE = torch.device("cpu")


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(reps, fn, warmups=1):
    for _ in range(warmups):  # warm-up (a compiled model compiles in its first call)
        fn()
    sync()
    t = []
    for _ in range(reps):
        a = time.perf_counter()
        fn()
        sync()
        t.append(time.perf_counter() - a)
    return statistics.median(t)


def run_info(a):
    """The fields every line carries beyond the measurement: how the peer ran."""
    d = {"device": DEVICE.type, "attention": a.attention, "compiled": a.compile, "torch": torch.__version__}
    if a.autocast != "none":
        d["autocast"] = a.autocast
    if DEVICE.type == "cuda":
        d["tf32"] = a.tf32
    return d


def maybe_compile(a, m):
    """torch.compile(m) with --compile (Inductor on the CPU: it writes C++ and builds it with the
    system compiler; its compile workers are capped at --threads). A failure usually shows at the
    first call, not here; main() turns either into one line on stderr and exit status 3."""
    if not a.compile:
        return m
    if not hasattr(torch, "compile"):
        raise RuntimeError(f"torch.compile needs PyTorch >= 2.0 (this is {torch.__version__})")
    try:
        import torch._inductor.config as inductor_config
        inductor_config.compile_threads = max(1, a.threads)
    except (ImportError, AttributeError):
        pass
    return torch.compile(m)


def emit(d):
    print(json.dumps(d), flush=True)


def bench_train_one(a, name):
    torch.manual_seed(0)
    c = tm.Config(vocab=a.vocab, hidden=a.hidden, layers=a.layers, heads=a.heads, intermediate=a.mlp,
                  max_seq=a.seq, hyena_filter_order=64, attention=a.attention)
    base = status_kb("VmRSS")
    model = tm.CausalLM(c, "attention" if name == "teacher" else "hyena").to(DEVICE)
    opt = tm.adamw(model)
    run = maybe_compile(a, model)
    g = torch.Generator().manual_seed(0)
    inp = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g).to(DEVICE)
    tgt = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g).to(DEVICE)

    def mixed():  # torch.autocast with --autocast bf16, else nothing
        return torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=a.autocast == "bf16")

    def step():
        with mixed():
            logits = run(inp)
            loss = F.cross_entropy(logits.float().view(-1, a.vocab), tgt.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    t_step = median_seconds(a.reps, step, warmups=3 if a.compile else 1)
    model.eval()

    def fwd():
        with torch.no_grad(), mixed():
            run(inp)

    t_fwd = median_seconds(a.reps, fwd, warmups=3 if a.compile else 1)
    tokens = a.batch * a.seq
    d = {"impl": "torch", "model": name, "threads": torch.get_num_threads(),
         "train_tokens_per_s": round(tokens / t_step), "forward_tokens_per_s": round(tokens / t_fwd),
         "train_step_ms": round(t_step * 1e3, 2), "peak_rss_mb": round((status_kb("VmHWM") - base) / 1024, 1),
         "base_rss_mb": round(base / 1024, 1), "params": sum(p.numel() for p in model.parameters()),
         "batch": a.batch, "seq": a.seq}
    if DEVICE.type == "cuda":
        d["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    d.update(run_info(a))
    emit(d)


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
        op = tm.HyenaOperator(c).to(DEVICE)
        fn = maybe_compile(a, op)
        x = torch.randn(1, L, a.width, device=DEVICE)
        if a.forward_only:
            def run():
                with torch.no_grad():
                    fn(x)
        else:
            x.requires_grad_(True)
            dy = torch.randn(1, L, a.width, device=DEVICE)

            def run():
                x.grad = None
                op.zero_grad(set_to_none=True)
                fn(x).backward(dy)
        emit_timed(a, {"impl": "torch", "op": "hyena_operator", "L": L, "width": a.width}, key, run, base)
        del op, fn, x


def emit_timed(a, d, key, run, base):
    """Times run() (a first call to warm up and pick the repetitions, about 3 s in all; compiled
    code gets two more warm-ups) and emits d with the median under `key`."""
    for _ in range(3 if a.compile else 0):
        run()
    sync()
    a0 = time.perf_counter()
    run()
    sync()
    one = time.perf_counter() - a0
    reps = max(1, min(a.reps, int(3.0 / max(one, 1e-9))))
    t = []
    for _ in range(reps):
        a0 = time.perf_counter()
        run()
        sync()
        t.append(time.perf_counter() - a0)
    d[key] = round(statistics.median(t) * 1e3, 3)
    d["threads"] = torch.get_num_threads()
    d["peak_rss_mb"] = round((status_kb("VmHWM") - base) / 1024, 1)
    if DEVICE.type == "cuda":
        d["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    d.update(run_info(a))
    emit(d)


def bench_conv(a):
    """The long causal convolution alone: fftconv on (batch, width, L) and its backward."""
    base = status_kb("VmRSS")
    for L in sorted(a.lengths):
        torch.manual_seed(0)
        x = torch.randn(a.batch, a.width, L, device=DEVICE)
        h = 0.1 * torch.randn(a.width, L, device=DEVICE)
        fn = maybe_compile(a, tm.fftconv)

        def fwd():
            with torch.no_grad():
                fn(x, h)

        emit_timed(a, {"impl": "torch", "op": "long_conv", "L": L, "batch": a.batch, "width": a.width}, "fwd_ms", fwd,
                   base)
        xg, hg = x.clone().requires_grad_(True), h.clone().requires_grad_(True)
        dy = torch.randn(a.batch, a.width, L, device=DEVICE)

        def fwd_bwd():
            xg.grad, hg.grad = None, None
            fn(xg, hg).backward(dy)

        emit_timed(a, {"impl": "torch", "op": "long_conv", "L": L, "batch": a.batch, "width": a.width}, "fwd_bwd_ms",
                   fwd_bwd, base)
        del x, h, xg, hg, dy


def bench_attention(a):
    """Causal SDPA attention alone on (1, heads, L, width / heads), forward + backward."""
    if not hasattr(F, "scaled_dot_product_attention"):
        raise SystemExit(f"--what attention needs PyTorch >= 2.0 (this is {torch.__version__})")
    base = status_kb("VmRSS")
    hd = a.width // a.heads
    for L in sorted(a.lengths):
        torch.manual_seed(0)
        q, k, v = (torch.randn(1, a.heads, L, hd, device=DEVICE, requires_grad=True) for _ in range(3))
        dy = torch.randn(1, a.heads, L, hd, device=DEVICE)

        def run():
            q.grad, k.grad, v.grad = None, None, None
            F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(dy)

        emit_timed(a, {"impl": "torch", "op": "sdpa_attention", "L": L, "width": a.width, "heads": a.heads},
                   "fwd_bwd_ms", run, base)
        del q, k, v, dy


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--what", choices=["train", "operator", "conv", "attention"], default="train")
    p.add_argument("--model", choices=["teacher", "hyena_student", "both"], default="both")
    for k, v in [("hidden", 128), ("layers", 4), ("heads", 4), ("mlp", 512), ("seq", 256), ("batch", 8),
                 ("vocab", 256), ("width", 128)]:
        p.add_argument("--" + k, type=int, default=v)
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    p.add_argument("--forward-only", action="store_true")
    p.add_argument("--max-gb", type=float, default=None, help="skip operator lengths above this (default 8 on "
                   "the CPU, 120 on cuda)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--attention", choices=["eager", "sdpa"], default="eager")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--tf32", action="store_true")
    p.add_argument("--autocast", choices=["none", "bf16"], default="none")
    a = p.parse_args()
    if a.autocast != "none" and a.what != "train":
        fail("--autocast applies to --what train only")
    global DEVICE
    DEVICE = torch.device(a.device)
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no GPU")
    if a.max_gb is None:
        a.max_gb = 120.0 if a.device == "cuda" else 8.0
    if a.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
    torch.set_num_threads(a.threads)
    if a.attention == "sdpa" and not hasattr(F, "scaled_dot_product_attention"):
        fail(f"--attention sdpa needs PyTorch >= 2.0 (this is {torch.__version__})")
    try:
        if a.what == "operator":
            bench_operator(a)
        elif a.what == "conv":
            bench_conv(a)
        elif a.what == "attention":
            bench_attention(a)
        elif a.model == "both":  # a fresh process per model, so peak RSS is per model
            for m in ["teacher", "hyena_student"]:
                args = [sys.executable, os.path.abspath(__file__)] + [x for x in sys.argv[1:]] + ["--model", m]
                subprocess.run(args, check=True)
        else:
            bench_train_one(a, a.model)
    except Exception as e:  # noqa: BLE001 -- e.g. torch.compile failing on this machine: say why in one line
        import traceback
        traceback.print_exc()
        fail(f"{type(e).__name__}: {first_line(str(e))}")


def first_line(msg):
    lines = [x.strip() for x in msg.strip().splitlines() if x.strip()]
    return (lines[0] if lines else "")[:300]


def fail(reason):
    """The last line on stderr is the reason, for compare.py's column; exit status 3."""
    print(f"torch_bench.py: failed: {reason}", file=sys.stderr, flush=True)
    sys.exit(3)


if __name__ == "__main__":
    main()
