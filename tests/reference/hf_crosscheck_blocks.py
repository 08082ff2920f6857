"""Optional: checks the block fixtures against Hugging Face transformers' own layers.

The golden scripts (gpt_neox_block_golden.py, llama_block_golden.py) are independent
re-implementations; this loads their fixtures into transformers' GPTNeoXLayer and
LlamaDecoderLayer (weights mapped from our layout to HF's) and compares the output and
every gradient of sum(output * r). It needs transformers >= 4.31 (GQA for Llama), which
the test environment does not have, so it is not part of the test suite. Run it with e.g.
    pip install --target /tmp/tf --no-deps transformers==4.31.0 huggingface_hub==0.16.4 \
        tokenizers==0.13.3 safetensors==0.3.1 regex packaging filelock tqdm
    PYTHONPATH=/tmp/tf /usr/bin/python3 tests/reference/hf_crosscheck_blocks.py
HF keeps some pieces in float32 (rotary tables, RMSNorm), hence the 1e-5 tolerance.
"""
import json
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name):
    with open(os.path.join(HERE, "fixtures", name)) as f:
        j = json.load(f)
    t = {k: torch.tensor(v["data"], dtype=torch.float64).reshape(v["shape"]) for k, v in j["tensors"].items()}
    return j["meta"], t


def neox_qkv_to_hf(w, heads, hd):
    """Ours: rows [q all heads | k all heads | v all heads]; HF: per head [q | k | v]."""
    rest = w.shape[1:]
    return w.reshape(3, heads, hd, *rest).transpose(0, 1).reshape(3 * heads * hd, *rest)


def report(what, ours, theirs, tol=1e-5):
    err = ((ours - theirs).abs().max() / theirs.abs().max().clamp_min(1e-30)).item()
    print(f"  {what:32s} rel err {err:.2e}")
    assert err <= tol, what
    return err


def check_neox():
    from transformers import GPTNeoXConfig
    from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXLayer

    m, t = load("gpt_neox_block.json")
    cfg = GPTNeoXConfig(hidden_size=m["hidden"], num_attention_heads=m["heads"], intermediate_size=m["intermediate"],
                        rotary_pct=m["rotary_pct"], rotary_emb_base=m["rotary_base"], layer_norm_eps=m["norm_eps"],
                        use_parallel_residual=True, hidden_act="gelu", max_position_embeddings=64,
                        attention_dropout=0.0, hidden_dropout=0.0)
    layer = GPTNeoXLayer(cfg).double().eval()
    hd = m["head_dim"]
    names = {"input_layernorm": "norm1", "post_attention_layernorm": "norm2", "attention.dense": "mixer.out",
             "attention.query_key_value": "mixer.qkv", "mlp.dense_h_to_4h": "mlp.fc_in",
             "mlp.dense_4h_to_h": "mlp.fc_out"}
    with torch.no_grad():
        for hf, ours in names.items():
            for kind in ("weight", "bias"):
                v = t[f"{ours}.{kind}"]
                if hf == "attention.query_key_value":
                    v = neox_qkv_to_hf(v, m["heads"], hd)
                layer.get_submodule(hf).get_parameter(kind).copy_(v)
    x = t["input"].clone().requires_grad_(True)
    pos = torch.arange(m["seq"]).unsqueeze(0).expand(m["batch"], -1)
    y = layer(x, position_ids=pos)[0]
    (y * t["r"]).sum().backward()
    print("gpt_neox_block.json vs transformers GPTNeoXLayer")
    report("output", t["output"], y.detach())
    report("grad.input", t["grad.input"], x.grad)
    for hf, ours in names.items():
        for kind in ("weight", "bias"):
            g = layer.get_submodule(hf).get_parameter(kind).grad
            if hf == "attention.query_key_value":  # back to our layout
                g = g.reshape(m["heads"], 3, hd, *g.shape[1:]).transpose(0, 1).reshape(g.shape)
            report(f"grad.{ours}.{kind}", t[f"grad.{ours}.{kind}"], g)


def check_llama():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    m, t = load("llama_block.json")
    cfg = LlamaConfig(hidden_size=m["hidden"], num_attention_heads=m["heads"], num_key_value_heads=m["kv_heads"],
                      intermediate_size=m["intermediate"], rms_norm_eps=m["norm_eps"], hidden_act="silu",
                      max_position_embeddings=64, pretraining_tp=1)
    layer = LlamaDecoderLayer(cfg).double().eval()
    hd, h, kv = m["head_dim"], m["heads"], m["kv_heads"]
    qkv = t["mixer.qkv.weight"]
    split = {"self_attn.q_proj": (0, h * hd), "self_attn.k_proj": (h * hd, (h + kv) * hd),
             "self_attn.v_proj": ((h + kv) * hd, (h + 2 * kv) * hd)}
    plain = {"input_layernorm": "norm1", "post_attention_layernorm": "norm2", "self_attn.o_proj": "mixer.out",
             "mlp.gate_proj": "mlp.gate", "mlp.up_proj": "mlp.up", "mlp.down_proj": "mlp.down"}
    with torch.no_grad():
        for hf, (a, b) in split.items():
            layer.get_submodule(hf).weight.copy_(qkv[a:b])
        for hf, ours in plain.items():
            layer.get_submodule(hf).weight.copy_(t[f"{ours}.weight"])
    x = t["input"].clone().requires_grad_(True)
    s = m["seq"]
    mask = torch.full((s, s), float("-inf"), dtype=torch.float64).triu(1).expand(m["batch"], 1, s, s)
    pos = torch.arange(s).unsqueeze(0).expand(m["batch"], -1)
    y = layer(x, attention_mask=mask, position_ids=pos)[0]
    (y * t["r"]).sum().backward()
    print("llama_block.json vs transformers LlamaDecoderLayer")
    report("output", t["output"], y.detach())
    report("grad.input", t["grad.input"], x.grad)
    gq = torch.cat([layer.get_submodule(hf).weight.grad for hf in split])
    report("grad.mixer.qkv.weight", t["grad.mixer.qkv.weight"], gq)
    for hf, ours in plain.items():
        report(f"grad.{ours}.weight", t[f"grad.{ours}.weight"], layer.get_submodule(hf).weight.grad)


if __name__ == "__main__":
    check_neox()
    check_llama()
    print("all match")
