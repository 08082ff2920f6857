"""flops.py: the model FLOPs of compare.py's rows, for its achieved-FLOP/s (MFU) column.

Model FLOPs are a property of the computation, not of an implementation: the same count divides
hyena's time and every PyTorch column's, so MFU = (FLOPs / time) / peak compares how well each
uses the machine. The convention is the usual one for transformers (Kaplan et al. 2020, Chowdhery
et al. 2022, PaLM appendix B): a multiply-add is 2 FLOPs; only the matrix products and (for Hyena)
the FFT convolutions count, not the norms, activations, softmax or the optimizer; backward costs
twice forward, so a training step is 3x forward. Causal attention counts its useful half: the
query-key and probability-value products over the L(L+1)/2 (query, key) pairs a query may see,
as the causal kernels compute them (PaLM counts the full square instead).

A real FFT of n points counts 2.5 n log2 n FLOPs (half the 5 n log2 n of a complex one, the
standard radix-2 count). The Hyena convolution (nn/hyena.hpp, FFT at n = 2L) per channel and
sequence: one forward transform of the input, the spectral product (n/2 + 1 complex multiplies,
6 FLOPs each) and one inverse; the filter's transform is once per channel, shared by the batch.

Shapes follow benchmarks/peers/torch_models.py (the GPT-NeoX teacher and its order-2 Hyena student)
and bench_operator (the operator alone, batch 1).
"""
import argparse
import json
import math
import os
import subprocess


def rfft_flops(n):
    return 2.5 * n * math.log2(n)


def fft_conv_flops(channels, batch, L):
    """Causal FFT convolution of `channels` channels of `batch` sequences of length L with one filter each."""
    n = 2 * L
    per_sequence = 2 * rfft_flops(n) + 6 * (n // 2 + 1)
    return channels * (batch * per_sequence + rfft_flops(n))


def implicit_filter_flops(channels, L, emb_dim=33, width=64, inner=2):
    """The implicit filter FFN evaluated at L positions: emb_dim -> width -> (inner x width) -> channels."""
    return 2 * L * (emb_dim * width + inner * width * width + width * channels)


def hyena_mixer_forward_flops(D, batch, L, order=2, short_filter=3, **filter_shape):
    T = batch * L
    proj = 2 * T * D * (order + 1) * D + 2 * T * D * D               # in_proj, out_proj
    short = 2 * T * (order + 1) * D * short_filter                  # depthwise causal conv
    conv = fft_conv_flops((order - 1) * D, batch, L)
    return proj + short + conv + implicit_filter_flops((order - 1) * D, L, **filter_shape)


def attention_mixer_forward_flops(D, heads, batch, L):
    T = batch * L
    proj = 2 * T * D * 3 * D + 2 * T * D * D                        # qkv, out projection
    pairs = batch * heads * L * (L + 1) // 2                          # causal (query, key) pairs per head
    return proj + 2 * 2 * pairs * (D // heads)                        # q k^T and P v


def lm_forward_flops(model, hidden, layers, heads, mlp, seq, batch, vocab):
    """One forward pass of compare.py's teacher ("teacher") or Hyena student ("hyena_student")."""
    T = batch * seq
    if model == "teacher":
        mixer = attention_mixer_forward_flops(hidden, heads, batch, seq)
    elif model == "hyena_student":
        mixer = hyena_mixer_forward_flops(hidden, batch, seq)
    else:
        raise ValueError(f"unknown model {model}")
    mlp_flops = 2 * 2 * T * hidden * mlp
    return layers * (mixer + mlp_flops) + 2 * T * hidden * vocab   # + the unembedding


def train_step_flops(model, **shape):
    """A training step (forward + backward) at the benchmark shape: 3x the forward's FLOPs."""
    return 3 * lm_forward_flops(model, **shape)


def operator_flops(width, L, backward):
    """The Hyena operator alone (bench_operator: batch 1, order 2), forward or forward + backward."""
    f = hyena_mixer_forward_flops(width, 1, L)
    return 3 * f if backward else f


# ----------------------------------------------------------------------------- the MFU column

def row_flops(row, settings):
    """Model FLOPs of one timed unit of a compare.py row (a JSON row of docs/results/cpu.json) and the
    seconds that unit took given the row's value v, or None for rows that are not timings."""
    shape = {k: settings[k] for k in ("hidden", "layers", "heads", "mlp", "seq", "batch", "vocab")}
    field = row.get("field")
    if row.get("section") == "train" and field == "train_step_ms":
        return train_step_flops(row["model"], **shape), lambda v: v / 1e3
    if row.get("section") == "train" and field == "forward_tokens_per_s":
        return lm_forward_flops(row["model"], **shape), lambda v: shape["batch"] * shape["seq"] / v
    if field in ("fwd_bwd_ms", "fwd_ms"):
        return operator_flops(row["width"], row["L"], field == "fwd_bwd_ms"), lambda v: v / 1e3
    return None


def mfu_rows(rows, settings, peak_gflops, columns):
    """For every timed row: its model GFLOP, and hyena's and each PyTorch column's achieved GFLOP/s
    and MFU (achieved / peak_gflops, the machine's measured FMA peak at the run's thread count)."""
    out = []
    for row in rows:
        f = row_flops(row, settings)
        if f is None:
            continue
        flops, seconds = f

        def cell(median):
            if not median:
                return None
            g = flops / seconds(median) / 1e9
            return {"gflops": round(g, 2), "mfu": round(g / peak_gflops, 4) if peak_gflops else None}

        label = (f"train/{row['model']} {row['metric']}" if row["section"] == "train"
                 else f"operator {'fwd+bwd' if row['field'] == 'fwd_bwd_ms' else 'fwd'} L={row['L']}")
        out.append({"row": label, "model_gflop": round(flops / 1e9, 4), "hyena": cell(row["hyena"].get("median")),
                    "columns": {c: {"same_as": "eager"} if row["columns"].get(c, {}).get("status") == "same as eager"
                                else cell(row["columns"].get(c, {}).get("median")) for c in columns}})
    return out


def mfu_markdown(mfu, peak_gflops, threads, labels, source="bench_gemm --peak-only"):
    """The MFU table (markdown): one line per timed row; labels maps column keys to their titles."""
    keys = list(labels)
    L = [f"Model FLOPs per unit (benchmarks/flops.py: products and FFTs only, training = 3x forward, causal "
         f"attention's useful half) over the time, against the FMA peak of the machine at "
         f"{threads} thread{'s' if threads != 1 else ''}: {peak_gflops:.1f} GFLOP/s ({source}). "
         "A lead of 2x over a column takes twice its MFU: the last column is that for the strongest, and "
         "the floor is the time of the model FLOPs at the peak.\n",
         "| row | model GFLOP | floor ms | hyena GFLOP/s | hyena MFU | " +
         " | ".join(f"{labels[c]} MFU" for c in keys) + " | 2x the strongest needs |",
         "|---|---|---|---|---|" + "---|" * len(keys) + "---|"]

    def pct(cell):
        if cell and "same_as" in cell:
            return "= eager"
        return f"{100 * cell['mfu']:.1f}%" if cell and cell.get("mfu") is not None else "n/a"

    for m in mfu:
        h = m["hyena"]
        best = max((c["mfu"] for c in m["columns"].values() if c and c.get("mfu") is not None), default=None)
        L.append(f"| {m['row']} | {m['model_gflop']:.3f} | {1e3 * m['model_gflop'] / peak_gflops:.2f} | "
                 f"{h['gflops'] if h else 'n/a'} | {pct(h)} | " +
                 " | ".join(pct(m["columns"].get(c)) for c in keys) +
                 f" | {f'{200 * best:.1f}%' if best is not None else 'n/a'} |")
    return "\n".join(L)


def measure_peak(bench_gemm, threads, key="fma_peak_gflops"):
    """The FMA peak in GFLOP/s from `bench_gemm --peak-only --threads N` (or its bf16_peak_gflops),
    or None if it cannot run or has no such peak."""
    try:
        out = subprocess.run([bench_gemm, "--peak-only", "--threads", str(threads)], capture_output=True, text=True,
                             timeout=120, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        return json.loads(out.stdout.strip().splitlines()[-1])[key] if out.returncode == 0 else None
    except (OSError, ValueError, IndexError, KeyError, subprocess.TimeoutExpired):
        return None


def main():
    """Adds the MFU column to an existing compare.py result: python3 benchmarks/flops.py --json FILE
    (--peak-gflops X | --bench-gemm BUILD/benchmarks/bench_gemm); prints the table, rewrites FILE."""
    p = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    p.add_argument("--json", required=True, help="compare.py's output (docs/results/cpu.json)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--peak-gflops", type=float, help="the FMA peak of the machine the run was on")
    g.add_argument("--bench-gemm", help="measure the peak now with this bench_gemm (on the run's machine)")
    p.add_argument("--peak-note", default="given (--peak-gflops)", help="where the given peak comes from")
    a = p.parse_args()
    with open(a.json) as f:
        d = json.load(f)
    threads = d["settings"]["threads"]
    peak, source = a.peak_gflops, a.peak_note
    if peak is None:
        peak, source = measure_peak(a.bench_gemm, threads), f"{a.bench_gemm} --peak-only --threads {threads}"
        if peak is None:
            raise SystemExit(f"flops.py: {a.bench_gemm} --peak-only did not give a peak")
    labels = {c: v["label"] for c, v in d["columns"].items()}
    d["peak"] = {"fma_gflops": peak, "threads": threads, "source": source}
    d["mfu"] = mfu_rows(d["rows"], d["settings"], peak, list(labels))
    print(mfu_markdown(d["mfu"], peak, threads, labels, source))
    with open(a.json + ".tmp", "w") as f:
        json.dump(d, f, indent=1)
        f.write("\n")
    os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
