"""Golden fixture for nn::attention (tests/nn/test_attention.cpp).

An independent PyTorch version of causal self-attention with GPT-NeoX rotary
("rotate_half") and grouped-query heads, run in float64. Writes the input, the
weights, the output and the gradients of sum(output * r) for a fixed random r to
fixtures/attention.json.

Run: /usr/bin/python3 tests/reference/attention_golden.py
"""
import math
import os

import torch

from fixture_io import save_fixture

BATCH, SEQ, HIDDEN, HEADS, KV_HEADS = 2, 5, 16, 4, 2
ROTARY_PCT, ROTARY_BASE, BIAS = 0.5, 10000.0, True


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(x, rot_dims, base):
    """x: (batch, heads, seq, head_dim); rotates the first rot_dims dims of each head."""
    seq = x.shape[2]
    inv_freq = 1.0 / (base ** (torch.arange(0, rot_dims, 2, dtype=torch.float64) / rot_dims))
    freqs = torch.outer(torch.arange(seq, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    rot, rest = x[..., :rot_dims], x[..., rot_dims:]
    return torch.cat((rot * cos + rotate_half(rot) * sin, rest), dim=-1)


def attention(x, w_qkv, b_qkv, w_out, b_out):
    batch, seq, hidden = x.shape
    head_dim = hidden // HEADS
    rot_dims = int(head_dim * ROTARY_PCT)
    rot_dims -= rot_dims % 2
    qkv = torch.nn.functional.linear(x, w_qkv, b_qkv)
    q, k, v = qkv.split([HEADS * head_dim, KV_HEADS * head_dim, KV_HEADS * head_dim], dim=-1)
    q = q.view(batch, seq, HEADS, head_dim).transpose(1, 2)
    k = k.view(batch, seq, KV_HEADS, head_dim).transpose(1, 2)
    v = v.view(batch, seq, KV_HEADS, head_dim).transpose(1, 2)
    q, k = apply_rotary(q, rot_dims, ROTARY_BASE), apply_rotary(k, rot_dims, ROTARY_BASE)
    group = HEADS // KV_HEADS  # query head h reads kv head h // group
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
    mask = torch.ones(seq, seq, dtype=torch.bool).triu(1)
    probs = scores.masked_fill(mask, float("-inf")).softmax(dim=-1)
    o = (probs @ v).transpose(1, 2).reshape(batch, seq, hidden)
    return torch.nn.functional.linear(o, w_out, b_out)


def main():
    torch.manual_seed(1234)
    head_dim = HIDDEN // HEADS
    qkv_dim = (HEADS + 2 * KV_HEADS) * head_dim
    f64 = dict(dtype=torch.float64)
    x = torch.randn(BATCH, SEQ, HIDDEN, **f64).requires_grad_()
    # Weights large enough that the attention pattern is far from uniform.
    w_qkv = (0.4 * torch.randn(qkv_dim, HIDDEN, **f64)).requires_grad_()
    b_qkv = (0.2 * torch.randn(qkv_dim, **f64)).requires_grad_()
    w_out = (0.3 * torch.randn(HIDDEN, HIDDEN, **f64)).requires_grad_()
    b_out = (0.2 * torch.randn(HIDDEN, **f64)).requires_grad_()
    r = torch.randn(BATCH, SEQ, HIDDEN, **f64)

    y = attention(x, w_qkv, b_qkv, w_out, b_out)
    (y * r).sum().backward()

    meta = dict(batch=BATCH, seq=SEQ, hidden=HIDDEN, heads=HEADS, kv_heads=KV_HEADS, rotary_pct=ROTARY_PCT,
                rotary_base=ROTARY_BASE, bias=BIAS, torch=torch.__version__)
    tensors = {
        "x": x, "r": r, "y": y,
        "qkv.weight": w_qkv, "qkv.bias": b_qkv, "out.weight": w_out, "out.bias": b_out,
        "dx": x.grad, "grad.qkv.weight": w_qkv.grad, "grad.qkv.bias": b_qkv.grad,
        "grad.out.weight": w_out.grad, "grad.out.bias": b_out.grad,
    }
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "fixtures", "attention.json")
    save_fixture(path, tensors, meta)
    print("wrote", path)


if __name__ == "__main__":
    main()
