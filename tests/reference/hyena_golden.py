"""Golden fixture for nn::hyena_operator (tests/nn/test_hyena.cpp).

An independent PyTorch version of the Hyena operator (safari's HyenaOperator with the
channel layout of include/hyena/nn/hyena.hpp), run in float64:
  in_proj -> depthwise F.conv1d (padding K-1, first L outputs) -> blocks x_0..x_{N-1}, v
  implicit filter: positional table -> Linear/sin FFN (one shared freq) -> Linear (no bias)
                   -> decay window exp(-|delta_c| t), delta_c = linspace(ln(1e-2)/0.3, ln(1e-2)/1.5)
  for i = N-1..1: v = x_i * v; v = irfft(rfft(v, 2L) * rfft(h_i, 2L))[:L] + bias_i * v
  y = out_proj(x_0 * v)
Writes the input, every weight, the filter h, the output and the gradients of
sum(output * r) w.r.t. the input and every weight to fixtures/hyena.json.

Run: /usr/bin/python3 tests/reference/hyena_golden.py
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import save_fixture  # noqa: E402

BATCH, SEQ, HIDDEN, ORDER = 2, 8, 8, 3
FILTER_ORDER, EMB_DIM, FILTER_LAYERS, MAX_SEQ, SHORT = 8, 5, 1, 8, 3
DT = torch.float64


def positional_table(max_seq, emb_dim):
    """safari's PositionalEmbedding.z: [t, Re, Im] of exp(-i f_k w_n)."""
    t = torch.linspace(0, 1, max_seq, dtype=DT)[:, None]
    bands = (emb_dim - 1) // 2
    w = 2 * math.pi * torch.linspace(0, max_seq - 1, max_seq, dtype=DT)[:, None] / max_seq
    f = torch.linspace(1e-4, bands - 1, bands, dtype=DT)[None]
    z = torch.exp(-1j * f * w)
    return torch.cat([t, z.real, z.imag], dim=-1), t


def make_weights(gen):
    D, N = HIDDEN, ORDER
    C = (N + 1) * D

    def randn(*shape, std=1.0):
        return torch.randn(*shape, dtype=DT, generator=gen) * std

    pos, _ = positional_table(MAX_SEQ, EMB_DIM)
    w = {
        "in_proj.weight": randn(C, D, std=0.3),
        "in_proj.bias": randn(C, std=0.1),
        "short_conv.weight": randn(C, SHORT, std=0.5),
        "short_conv.bias": randn(C, std=0.1),
        "filter.pos": pos,
        "filter.freq": 1.0 + 0.2 * randn(FILTER_ORDER),
        "filter.mlp.0.weight": randn(FILTER_ORDER, EMB_DIM, std=0.5),
        "filter.mlp.0.bias": randn(FILTER_ORDER, std=0.5),
    }
    for i in range(1, FILTER_LAYERS + 1):
        w[f"filter.mlp.{i}.weight"] = randn(FILTER_ORDER, FILTER_ORDER, std=0.4)
        w[f"filter.mlp.{i}.bias"] = randn(FILTER_ORDER, std=0.4)
    w[f"filter.mlp.{FILTER_LAYERS + 1}.weight"] = randn((N - 1) * D, FILTER_ORDER, std=0.4)
    w["bias"] = randn(N - 1, D)
    w["out_proj.weight"] = randn(D, D, std=0.3)
    w["out_proj.bias"] = randn(D, std=0.1)
    return {k: v.clone().requires_grad_() for k, v in w.items()}


def implicit_filter(w, L):
    """h ((N-1) D, L) for the first L positions."""
    _, t = positional_table(MAX_SEQ, EMB_DIM)
    freq = w["filter.freq"]
    a = w["filter.pos"][:L]
    for i in range(FILTER_LAYERS + 1):
        a = torch.sin(freq * F.linear(a, w[f"filter.mlp.{i}.weight"], w[f"filter.mlp.{i}.bias"]))
    k = F.linear(a, w[f"filter.mlp.{FILTER_LAYERS + 1}.weight"])  # (L, channels)
    channels = (ORDER - 1) * HIDDEN
    deltas = torch.linspace(math.log(1e-2) / 0.3, math.log(1e-2) / 1.5, channels, dtype=DT)
    return (k * torch.exp(-t[:L] * deltas.abs())).t()


def fft_causal_conv(v, h):
    """v (B, D, L), h (D, L): causal linear convolution via FFT at size 2L."""
    L = v.shape[-1]
    n = 2 * L
    return torch.fft.irfft(torch.fft.rfft(v, n=n) * torch.fft.rfft(h, n=n), n=n)[..., :L]


def hyena(w, u):
    B, L, D = u.shape
    N = ORDER
    p = F.linear(u, w["in_proj.weight"], w["in_proj.bias"]).transpose(1, 2)  # (B, C, L)
    s = F.conv1d(p, w["short_conv.weight"][:, None, :], w["short_conv.bias"], padding=SHORT - 1,
                 groups=(N + 1) * D)[..., :L]
    *x, v = s.split(D, dim=1)
    h = implicit_filter(w, L)
    for i in range(N - 1, 0, -1):
        v = v * x[i]
        v = fft_causal_conv(v, h[(i - 1) * D:i * D]) + v * w["bias"][i - 1][:, None]
    y = F.linear((x[0] * v).transpose(1, 2), w["out_proj.weight"], w["out_proj.bias"])
    return y, h


def main():
    gen = torch.Generator().manual_seed(1234)
    w = make_weights(gen)
    u = torch.randn(BATCH, SEQ, HIDDEN, dtype=DT, generator=gen).requires_grad_()
    r = torch.randn(BATCH, SEQ, HIDDEN, dtype=DT, generator=gen)
    y, h = hyena(w, u)
    (y * r).sum().backward()

    # Sanity: causality of the reference itself (output before t ignores input at t).
    u2 = u.detach().clone()
    u2[:, 5] += 1.0
    y2, _ = hyena(w, u2)
    assert torch.allclose(y2[:, :5], y.detach()[:, :5], atol=1e-12), "reference is not causal"

    tensors = {"input": u, "r": r, "output": y, "h": h, "grad.input": u.grad}
    for name, t in w.items():
        tensors[name] = t
        tensors["grad." + name] = t.grad
    meta = {"batch": BATCH, "seq": SEQ, "hidden": HIDDEN, "order": ORDER, "filter_order": FILTER_ORDER,
            "emb_dim": EMB_DIM, "filter_layers": FILTER_LAYERS, "max_seq": MAX_SEQ, "short_filter": SHORT,
            "torch": torch.__version__}
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "hyena.json")
    save_fixture(out, tensors, meta)
    print("wrote", out, {k: tuple(v.shape) for k, v in tensors.items()})


if __name__ == "__main__":
    main()
