"""Golden values for ONE GPT-NeoX transformer block, from an independent PyTorch implementation.

Rerun from the repository root (needs torch >= 1.13 and numpy):
    /usr/bin/python3 tests/reference/gpt_neox_block_golden.py
It rewrites tests/reference/fixtures/gpt_neox_block.json (float64 throughout; seed in meta).

Semantics follow Hugging Face's GPTNeoXLayer with use_parallel_residual=True:
    y = x + attn(ln1(x)) + mlp(ln2(x))
  ln:   LayerNorm over hidden, eps 1e-5, affine (weights and biases random here)
  attn: fused qkv projection with bias; rotary "rotate_half" on the first
        int(head_dim * rotary_pct) dims of every q and k head, base 10000, positions 0..seq-1;
        causal softmax(q k^T / sqrt(head_dim)); heads concatenated; output projection with bias
  mlp:  fc_out(gelu(fc_in(h))) with the exact erf GELU, biases on both
Parameter names and layout are OURS (see block_common.py): "mixer.qkv.weight" rows are
[q all heads | k all heads | v all heads], not HF's per-head interleaving.

Tensors: "input", "output", "r" (fixed random), every parameter by name, and the
gradients of sum(output * r) as "grad.input" and "grad.<param name>".
"""
import os

import torch
import torch.nn.functional as F

from block_common import attention, run_and_save

BATCH, SEQ, HIDDEN, HEADS, INTERMEDIATE = 2, 6, 16, 4, 32
# rotary_pct 0.5, not Pythia's 0.25: with head_dim 4, 0.25 would rotate int(4 * 0.25) = 1 dim,
# an odd count rotate_half cannot pair. 0.5 gives 2 rotated dims and 2 passed through, which
# still exercises partial rotary.
ROTARY_PCT, ROTARY_BASE, EPS = 0.5, 10000.0, 1e-5
HEAD_DIM = HIDDEN // HEADS
ROT_DIMS = int(HEAD_DIM * ROTARY_PCT)
assert ROT_DIMS % 2 == 0 and 0 < ROT_DIMS < HEAD_DIM
SEED = 20240607


def layer_norm(x, w, b):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # biased variance, as nn.LayerNorm
    return (x - mean) / torch.sqrt(var + EPS) * w + b


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / 2.0 ** 0.5))


def block(x, p):
    h1 = layer_norm(x, p["norm1.weight"], p["norm1.bias"])
    h2 = layer_norm(x, p["norm2.weight"], p["norm2.bias"])
    a = attention(h1, p, "mixer.", HEADS, HEADS, ROT_DIMS, ROTARY_BASE, bias=True)
    m = gelu_erf(h2 @ p["mlp.fc_in.weight"].t() + p["mlp.fc_in.bias"])
    m = m @ p["mlp.fc_out.weight"].t() + p["mlp.fc_out.bias"]
    return x + a + m


def self_check():
    """Cross-checks against torch's own LayerNorm and GELU (guards the hand-written ones)."""
    x = torch.randn(3, HIDDEN, dtype=torch.float64)
    w, b = torch.randn(HIDDEN, dtype=torch.float64), torch.randn(HIDDEN, dtype=torch.float64)
    assert torch.allclose(layer_norm(x, w, b), F.layer_norm(x, (HIDDEN,), w, b, EPS), atol=1e-12)
    assert torch.allclose(gelu_erf(x), F.gelu(x), atol=1e-12)


def main():
    self_check()
    qkv_rows = (HEADS + 2 * HEADS) * HEAD_DIM
    shapes = {
        "norm1.weight": (HIDDEN,), "norm1.bias": (HIDDEN,),
        "mixer.qkv.weight": (qkv_rows, HIDDEN), "mixer.qkv.bias": (qkv_rows,),
        "mixer.out.weight": (HIDDEN, HIDDEN), "mixer.out.bias": (HIDDEN,),
        "norm2.weight": (HIDDEN,), "norm2.bias": (HIDDEN,),
        "mlp.fc_in.weight": (INTERMEDIATE, HIDDEN), "mlp.fc_in.bias": (INTERMEDIATE,),
        "mlp.fc_out.weight": (HIDDEN, INTERMEDIATE), "mlp.fc_out.bias": (HIDDEN,),
    }
    meta = {"batch": BATCH, "seq": SEQ, "hidden": HIDDEN, "heads": HEADS, "kv_heads": HEADS,
            "head_dim": HEAD_DIM, "intermediate": INTERMEDIATE, "rotary_pct": ROTARY_PCT,
            "rotary_dims": ROT_DIMS, "rotary_base": ROTARY_BASE, "norm_eps": EPS,
            "parallel_residual": True, "attention_bias": True, "mlp_bias": True, "activation": "gelu_erf",
            "norm": "layer_norm", "script": "tests/reference/gpt_neox_block_golden.py"}
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "gpt_neox_block.json")
    run_and_save(out, block, shapes, meta, SEED)


if __name__ == "__main__":
    main()
