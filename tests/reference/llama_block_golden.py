"""Golden values for ONE Llama transformer block, from an independent PyTorch implementation.

Rerun from the repository root (needs torch >= 1.13 and numpy):
    /usr/bin/python3 tests/reference/llama_block_golden.py
It rewrites tests/reference/fixtures/llama_block.json (float64 throughout; seed in meta).

Semantics follow Hugging Face's LlamaDecoderLayer (sequential pre-norm residual):
    h = x + attn(rms1(x));  y = h + mlp(rms2(h))
  rms:  x / sqrt(mean(x^2) + 1e-5) * weight (no bias; weights random here)
  attn: no biases; grouped-query attention, heads 4, kv_heads 2 (query head i reads kv
        head i // 2); rotary "rotate_half" on every head dim (full rotary), base 10000;
        causal softmax(q k^T / sqrt(head_dim)); heads concatenated; output projection
  mlp:  SwiGLU, down(silu(gate(h)) * up(h)), no biases
Parameter names and layout are OURS (see block_common.py): "mixer.qkv.weight" has
(heads + 2*kv_heads)*head_dim rows ordered [q all heads | k all kv heads | v all kv heads].

Tensors: "input", "output", "r" (fixed random), every parameter by name, and the
gradients of sum(output * r) as "grad.input" and "grad.<param name>".
"""
import os

import torch
import torch.nn.functional as F

from block_common import attention, run_and_save

BATCH, SEQ, HIDDEN, HEADS, KV_HEADS, INTERMEDIATE = 2, 6, 16, 4, 2, 32
ROTARY_BASE, EPS = 10000.0, 1e-5
HEAD_DIM = HIDDEN // HEADS
SEED = 20240608


def rms_norm(x, w):
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + EPS) * w


def silu(x):
    return x / (1.0 + torch.exp(-x))


def block(x, p):
    h = x + attention(rms_norm(x, p["norm1.weight"]), p, "mixer.", HEADS, KV_HEADS, HEAD_DIM, ROTARY_BASE,
                      bias=False)
    n = rms_norm(h, p["norm2.weight"])
    m = silu(n @ p["mlp.gate.weight"].t()) * (n @ p["mlp.up.weight"].t())
    return h + m @ p["mlp.down.weight"].t()


def main():
    t = torch.randn(5, dtype=torch.float64)
    assert torch.allclose(silu(t), F.silu(t), atol=1e-12)
    qkv_rows = (HEADS + 2 * KV_HEADS) * HEAD_DIM
    shapes = {
        "norm1.weight": (HIDDEN,),
        "mixer.qkv.weight": (qkv_rows, HIDDEN),
        "mixer.out.weight": (HIDDEN, HIDDEN),
        "norm2.weight": (HIDDEN,),
        "mlp.gate.weight": (INTERMEDIATE, HIDDEN),
        "mlp.up.weight": (INTERMEDIATE, HIDDEN),
        "mlp.down.weight": (HIDDEN, INTERMEDIATE),
    }
    meta = {"batch": BATCH, "seq": SEQ, "hidden": HIDDEN, "heads": HEADS, "kv_heads": KV_HEADS,
            "head_dim": HEAD_DIM, "intermediate": INTERMEDIATE, "rotary_pct": 1.0, "rotary_dims": HEAD_DIM,
            "rotary_base": ROTARY_BASE, "norm_eps": EPS, "parallel_residual": False,
            "attention_bias": False, "mlp_bias": False, "activation": "swiglu", "norm": "rms_norm",
            "script": "tests/reference/llama_block_golden.py"}
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "llama_block.json")
    run_and_save(out, block, shapes, meta, SEED)


if __name__ == "__main__":
    main()
