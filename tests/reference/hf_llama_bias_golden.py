"""Golden fixtures for the Llama variants with biases (tests/io/test_hf_llama_bias.cpp).

Writes, under tests/reference/fixtures/:
  hf_tiny_llama_attn_bias/   LlamaForCausalLM with attention_bias=True (q/k/v/o_proj carry biases)
  hf_tiny_llama_both_bias/   attention_bias=True and mlp_bias=True (gate/up/down_proj too)
each with config.json, model.safetensors (save_pretrained) and logits.json (fp32 logits of PROMPT).
(The mlp_bias-only case is ../shared/cases/llama-mlp-bias, made by the same transformers.)

Needs transformers >= 4.41 (mlp_bias) on torch, e.g. Debian's python3-torch (1.13) and
    pip install --target /tmp/hfpy --no-deps transformers==4.44.2 huggingface_hub==0.24.6 \
        tokenizers==0.19.1 safetensors==0.4.5 regex packaging filelock tqdm pyyaml requests
    PYTHONPATH=/tmp/hfpy /usr/bin/python3 tests/reference/hf_llama_bias_golden.py
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from hf_tiny_golden import FIXTURES, PROMPT, logits_of, randomize, save_logits, save_model  # noqa: E402


def make(folder, seed, **bias):
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
                      rms_norm_eps=1e-6, hidden_act="silu", tie_word_embeddings=False, pretraining_tp=1,
                      rope_theta=500.0, **bias)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    names = [n for n, _ in model.named_parameters()]
    assert any(n.endswith("o_proj.bias") for n in names) == bias.get("attention_bias", False), names
    assert any(n.endswith("gate_proj.bias") for n in names) == bias.get("mlp_bias", False), names
    randomize(model, torch.Generator().manual_seed(seed))
    logits = logits_of(model, PROMPT)
    path = os.path.join(FIXTURES, folder)
    save_model(model, path)
    save_logits(path, logits, {"arch": "llama", "torch": torch.__version__,
                               "transformers": transformers.__version__, **bias})
    print(folder, tuple(logits.shape), "max |l| %.3f" % logits.abs().max().item())


if __name__ == "__main__":
    make("hf_tiny_llama_attn_bias", 3, attention_bias=True)
    make("hf_tiny_llama_both_bias", 4, attention_bias=True, mlp_bias=True)
