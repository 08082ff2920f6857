"""Pieces shared by the transformer-block golden scripts (gpt_neox_block_golden.py,
llama_block_golden.py): rotary embedding, causal attention over our fused-qkv layout,
seeded parameters, and the forward/backward run that produces a fixture.

Our layout of the fused projection "mixer.qkv.weight" is ((heads + 2*kv_heads)*head_dim, hidden):
output rows are [q for all heads | k for all kv heads | v for all kv heads], head_dim rows
contiguous per head. (Hugging Face GPT-NeoX interleaves q, k, v per head instead.)
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import save_fixture  # noqa: E402,F401  (re-exported for the scripts)

DTYPE = torch.float64


def rotate_half(x):
    """[x1, x2] -> [-x2, x1] over the last dimension (the GPT-NeoX / HF Llama convention)."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(x, rot_dims, base):
    """Rotary position embedding on the first rot_dims of each head of x (batch, heads, seq, head_dim).

    Position p, pair index i < rot_dims/2 uses angle p * base^(-2i/rot_dims); dims i and
    i + rot_dims/2 form the rotated pair. The remaining dims pass through unchanged.
    """
    if rot_dims == 0:
        return x
    seq = x.shape[-2]
    inv_freq = 1.0 / (base ** (torch.arange(0, rot_dims, 2, dtype=DTYPE) / rot_dims))
    angles = torch.outer(torch.arange(seq, dtype=DTYPE), inv_freq)  # (seq, rot_dims/2)
    angles = torch.cat((angles, angles), dim=-1)  # (seq, rot_dims)
    cos, sin = angles.cos(), angles.sin()
    x_rot, x_pass = x[..., :rot_dims], x[..., rot_dims:]
    x_rot = x_rot * cos + rotate_half(x_rot) * sin
    return torch.cat((x_rot, x_pass), dim=-1)


def attention(x, p, prefix, heads, kv_heads, rot_dims, base, bias):
    """Causal multi-head (grouped-query when kv_heads < heads) self-attention of x (batch, seq, hidden)."""
    batch, seq, hidden = x.shape
    hd = hidden // heads
    w = p[prefix + "qkv.weight"]
    qkv = x @ w.t()
    if bias:
        qkv = qkv + p[prefix + "qkv.bias"]
    q = qkv[..., : heads * hd]
    k = qkv[..., heads * hd: (heads + kv_heads) * hd]
    v = qkv[..., (heads + kv_heads) * hd:]
    # (batch, seq, h*hd) -> (batch, h, seq, hd)
    q = q.reshape(batch, seq, heads, hd).transpose(1, 2)
    k = k.reshape(batch, seq, kv_heads, hd).transpose(1, 2)
    v = v.reshape(batch, seq, kv_heads, hd).transpose(1, 2)
    q = apply_rotary(q, rot_dims, base)
    k = apply_rotary(k, rot_dims, base)
    # Query head h reads kv head h // (heads / kv_heads).
    group = heads // kv_heads
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    ctx = (probs @ v).transpose(1, 2).reshape(batch, seq, heads * hd)  # heads concatenated
    out = ctx @ p[prefix + "out.weight"].t()
    if bias:
        out = out + p[prefix + "out.bias"]
    return out


def random_params(shapes, gen):
    """Seeded random parameters: matrices ~ N(0, 1/fan_in), norm weights ~ 1 + N(0, 0.2^2),
    biases (norm biases included) ~ N(0, 0.1^2). Nothing is a default init."""
    p = {}
    for name, shape in shapes.items():
        if name.startswith("norm") and name.endswith(".weight"):
            t = 1.0 + 0.2 * torch.randn(shape, generator=gen, dtype=DTYPE)
        elif name.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=gen, dtype=DTYPE)
        else:
            t = torch.randn(shape, generator=gen, dtype=DTYPE) / math.sqrt(shape[-1])
        p[name] = t.requires_grad_(True)
    return p


def run_and_save(path, block, shapes, meta, seed):
    """Runs block(x, params) on seeded input, backpropagates sum(output * r) and writes
    input, every parameter, output, r and every gradient ("grad.<name>") to path."""
    gen = torch.Generator().manual_seed(seed)
    params = random_params(shapes, gen)
    x = torch.randn(meta["batch"], meta["seq"], meta["hidden"], generator=gen, dtype=DTYPE).requires_grad_(True)
    r = torch.randn(meta["batch"], meta["seq"], meta["hidden"], generator=gen, dtype=DTYPE)
    y = block(x, params)
    (y * r).sum().backward()
    tensors = {"input": x, "output": y, "r": r}
    tensors.update(params)
    tensors["grad.input"] = x.grad
    for name, t in params.items():
        tensors["grad." + name] = t.grad
    meta = dict(meta, seed=seed, torch=torch.__version__, loss="sum(output * r)")
    save_fixture(path, tensors, meta)
    print("wrote", path, "| output", tuple(y.shape), "| |y| max %.3f" % y.abs().max().item())
