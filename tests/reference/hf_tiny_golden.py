"""Golden fixtures for loading Hugging Face checkpoints (tests/io/test_hf_*.cpp).

Writes, under tests/reference/fixtures/:
  hf_tiny_neox/            a random GPTNeoXForCausalLM saved by save_pretrained (safetensors)
                           + logits.json (fp32 logits of PROMPT)
  hf_tiny_neox_sharded/    the same model saved in shards (model.safetensors.index.json)
  hf_tiny_neox_newcfg/     the same weights with a hand-written config.json in the newer
                           transformers spelling (rope_parameters instead of rotary_pct/rotary_emb_base)
  hf_tiny_llama/           a random LlamaForCausalLM (GQA: 4 heads, 2 kv heads, untied) + logits.json
  pythia70m_shape_logits.json
                           logits of a Pythia-70M-shaped model whose weights come from the
                           formula in formula_weight() (the C++ test computes the same one),
                           at every position for the vocab ids v % 97 == 0, plus the argmax.

Needs transformers 4.31 on torch 1.13, e.g.
    pip install --target /tmp/hfpy --no-deps transformers==4.31.0 huggingface_hub==0.16.4 \
        tokenizers==0.13.3 safetensors==0.3.1 regex packaging filelock tqdm
    PYTHONPATH=/tmp/hfpy /usr/bin/python3 tests/reference/hf_tiny_golden.py
"""
import json
import math
import os
import shutil
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fixture_io import save_fixture  # noqa: E402

FIXTURES = os.path.join(HERE, "fixtures")
PROMPT = [3, 17, 95, 0, 42, 42, 7, 64, 88, 21]


def randomize(model, gen):
    """Every parameter random (nothing left at its init): norm weights 1 + 0.2 N, biases 0.1 N,
    embeddings N, other matrices N / sqrt(fan_in)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                v = 0.1 * torch.randn(p.shape, generator=gen)
            elif "norm" in name:
                v = 1.0 + 0.2 * torch.randn(p.shape, generator=gen)
            elif "embed_in" in name or "embed_tokens" in name:
                v = torch.randn(p.shape, generator=gen)
            else:
                v = torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1])
            p.copy_(v)


def logits_of(model, tokens):
    with torch.no_grad():
        return model(torch.tensor([tokens])).logits[0].float()


def save_model(model, folder, **kw):
    if os.path.exists(folder):
        shutil.rmtree(folder)
    model.save_pretrained(folder, safe_serialization=True, **kw)
    gen_cfg = os.path.join(folder, "generation_config.json")
    if os.path.exists(gen_cfg):  # not ours to read; keeps the fixtures to what matters
        os.remove(gen_cfg)


def save_logits(folder, logits, meta):
    save_fixture(os.path.join(folder, "logits.json"), {"logits": logits, "tokens": torch.tensor(PROMPT)},
                 dict(meta, tokens=PROMPT))


def tiny_neox():
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    # rotary_pct 0.5 of head_dim 8 -> 4 rotary dims, two frequencies, so the base matters.
    cfg = GPTNeoXConfig(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, rotary_pct=0.5, rotary_emb_base=500, max_position_embeddings=64,
                        layer_norm_eps=1e-5, use_parallel_residual=True, tie_word_embeddings=False,
                        hidden_act="gelu")
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(cfg).eval()
    randomize(model, torch.Generator().manual_seed(1))
    logits = logits_of(model, PROMPT)
    meta = {"arch": "gpt_neox", "torch": torch.__version__}

    folder = os.path.join(FIXTURES, "hf_tiny_neox")
    save_model(model, folder)
    save_logits(folder, logits, meta)

    sharded = os.path.join(FIXTURES, "hf_tiny_neox_sharded")
    save_model(model, sharded, max_shard_size="40KB")
    assert os.path.exists(os.path.join(sharded, "model.safetensors.index.json")), "expected a sharded save"

    # The same weights under the newer config spelling (written by hand: this transformers is older).
    newcfg = os.path.join(FIXTURES, "hf_tiny_neox_newcfg")
    if os.path.exists(newcfg):
        shutil.rmtree(newcfg)
    os.makedirs(newcfg)
    shutil.copyfile(os.path.join(folder, "model.safetensors"), os.path.join(newcfg, "model.safetensors"))
    j = json.load(open(os.path.join(folder, "config.json")))
    for k in ("rotary_pct", "rotary_emb_base", "rope_scaling"):
        j.pop(k, None)
    j["rope_parameters"] = {"rope_type": "default", "rope_theta": 500.0, "partial_rotary_factor": 0.5}
    j["transformers_version"] = "5.0.0"
    with open(os.path.join(newcfg, "config.json"), "w") as f:
        json.dump(j, f, indent=2)
    print("gpt_neox: logits", tuple(logits.shape), "max |l| %.3f" % logits.abs().max().item())


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
                      rms_norm_eps=1e-6, hidden_act="silu", tie_word_embeddings=False, pretraining_tp=1)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    randomize(model, torch.Generator().manual_seed(2))
    logits = logits_of(model, PROMPT)
    folder = os.path.join(FIXTURES, "hf_tiny_llama")
    save_model(model, folder)
    save_logits(folder, logits, {"arch": "llama", "torch": torch.__version__})
    print("llama: logits", tuple(logits.shape), "max |l| %.3f" % logits.abs().max().item())


# --- Pythia-70M shapes, weights from a formula --------------------------------------------

PYTHIA_PROMPT = [0, 50303, 12, 8191, 25000, 3, 777, 40000, 1234, 50000, 99, 31337]


def fnv1a32(s):
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def formula_weight(name, shape):
    """Element i (row-major, HF layout) of HF tensor `name`, in 32-bit unsigned arithmetic:
        u = ((fnv1a32(name) ^ (i * 2654435761 mod 2^32)) & 0xffffff) / 2^24,  r = 2u - 1
    bias: 0.1 r;  norm weight: 1 + 0.2 r;  embed_in: r;  other (out, in) matrices: r sqrt(3 / in).
    Computed in double, rounded to float32 (tests/io/test_hf_pythia_shape.cpp does the same)."""
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.uint64)
    mix = (i * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    u = ((np.uint64(fnv1a32(name)) ^ mix) & np.uint64(0xFFFFFF)).astype(np.float64) / float(1 << 24)
    r = 2.0 * u - 1.0
    if name.endswith(".bias"):
        v = 0.1 * r
    elif "norm" in name:
        v = 1.0 + 0.2 * r
    elif "embed_in" in name:
        v = r
    else:
        v = r * math.sqrt(3.0 / shape[1])
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def pythia_shape():
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    cfg = GPTNeoXConfig(vocab_size=50304, hidden_size=512, num_hidden_layers=6, num_attention_heads=8,
                        intermediate_size=2048, rotary_pct=0.25, rotary_emb_base=10000,
                        max_position_embeddings=2048, layer_norm_eps=1e-5, use_parallel_residual=True,
                        tie_word_embeddings=False, hidden_act="gelu")
    model = GPTNeoXForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(formula_weight(name, tuple(p.shape)))
    logits = logits_of(model, PYTHIA_PROMPT)  # (seq, vocab)
    ids = list(range(0, cfg.vocab_size, 97))
    save_fixture(os.path.join(FIXTURES, "pythia70m_shape_logits.json"),
                 {"logits": logits[:, ids], "argmax": logits.argmax(-1).double()},
                 {"tokens": PYTHIA_PROMPT, "vocab_stride": 97, "torch": torch.__version__})
    print("pythia shape: argmax", logits.argmax(-1).tolist(), "max |l| %.3f" % logits.abs().max().item())


if __name__ == "__main__":
    tiny_neox()
    tiny_llama()
    pythia_shape()
