"""Writes the small committed seed corpora under fuzz/corpus/<harness>/ (run once; output committed).

Seeds that need hyena's own writers (token files, training checkpoints) are written by the
harnesses themselves (HYENA_FUZZ_WRITE_SEEDS, see scripts/fuzz.sh); the real files of the shared
data folder and the test fixtures are pointed at by path when a run starts, never copied here.
Usage: python3 fuzz/make_seeds.py
"""
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import llama2c_export as l2c  # noqa: E402

OUT = os.path.join(HERE, "corpus")


def folder(name):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def put(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def safetensors_seeds():
    d = folder("safetensors")
    cases = json.load(open(os.path.join(ROOT, "tests/reference/fixtures/safetensors_rules.json")))["cases"]
    for c in cases:
        put(d, c["name"], bytes.fromhex(c["hex"]))


def hf_config_seeds():
    d = folder("hf_config")
    neox = {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "vocab_size": 96, "hidden_size": 32,
            "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
            "max_position_embeddings": 64, "rotary_pct": 0.5, "rotary_emb_base": 500, "layer_norm_eps": 1e-5,
            "use_parallel_residual": True, "tie_word_embeddings": False, "hidden_act": "gelu",
            "attention_bias": True, "rope_scaling": None, "torch_dtype": "float32", "bos_token_id": 0}
    put(d, "neox.json", json.dumps(neox, indent=1))
    newcfg = dict(neox)
    for k in ("rotary_pct", "rotary_emb_base", "rope_scaling"):
        newcfg.pop(k)
    newcfg["rope_parameters"] = {"rope_type": "default", "rope_theta": 500.0, "partial_rotary_factor": 0.5}
    put(d, "neox_rope_parameters.json", json.dumps(newcfg))
    llama = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 96, "hidden_size": 32,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "hidden_act": "silu", "rope_theta": 10000.0,
             "tie_word_embeddings": False, "pretraining_tp": 1, "attention_bias": True, "mlp_bias": True,
             "head_dim": 8, "rope_scaling": None, "attention_dropout": 0.0, "pruned_heads": {}}
    put(d, "llama.json", json.dumps(llama, indent=1))
    put(d, "llama_min.json", json.dumps({k: llama[k] for k in ("model_type", "vocab_size", "hidden_size",
                                                              "num_hidden_layers", "num_attention_heads",
                                                              "intermediate_size", "max_position_embeddings")}))


def byte_level(b):
    """GPT-2's bytes_to_unicode for one byte."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    if b in printable:
        return chr(b)
    return chr(256 + sorted(set(range(256)) - set(printable)).index(b))


def bl(s):
    return "".join(byte_level(b) for b in s.encode("utf-8", "surrogateescape"))


def tokenizer_json(merges, normalizer=None, added=(), pre=None):
    vocab = {byte_level(b): b for b in range(256)}
    m = []
    for a, b in merges:
        if bl(a + b) not in vocab:
            vocab[bl(a + b)] = len(vocab)
        m.append(bl(a) + " " + bl(b))
    return json.dumps({"version": "1.0", "added_tokens": list(added), "normalizer": normalizer,
                       "pre_tokenizer": pre or {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
                       "decoder": {"type": "ByteLevel"}, "post_processor": None,
                       "model": {"type": "BPE", "vocab": vocab, "merges": m, "dropout": None,
                                 "unk_token": None, "fuse_unk": False}})


def hf_tokenizer_seeds():
    d = folder("hf_tokenizer")
    merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), (" ", "w"), ("o", "r"), ("l", "d"), (" w", "or")]
    put(d, "plain.json", tokenizer_json(merges))
    put(d, "nfc_added.json", tokenizer_json(merges, {"type": "NFC"}, [
        {"id": 300, "content": "<|endoftext|>", "special": True, "normalized": False, "single_word": False,
         "lstrip": False, "rstrip": False},
        {"id": 301, "content": "\u00e9t\u00e9", "special": False, "normalized": True, "single_word": False,
         "lstrip": False, "rstrip": False}]))
    put(d, "prefix_sequence.json", tokenizer_json(merges, None, [], {
        "type": "Sequence", "pretokenizers": [{"type": "ByteLevel", "add_prefix_space": True, "use_regex": False}]}))


def gpt2_seeds():
    d = folder("gpt2_tokenizer")
    merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("\u0120", "w"), ("o", "r")]
    enc = {byte_level(b): b for b in range(256)}
    for a, b in merges:
        enc.setdefault(a + b, len(enc))
    enc["<|endoftext|>"] = len(enc)
    bpe = "#version: 0.2\n" + "".join("%s %s\n" % (a, b) for a, b in merges)
    put(d, "tiny", json.dumps(enc) + "#vocab.bpe\n" + bpe)


def llama2c_seeds():
    d = folder("llama2c_checkpoint")
    import random
    rnd = random.Random(1)
    dim, hidden, layers, heads, kv, seq = 8, 16, 1, 2, 1, 4
    for name, vocab in (("v0_tied", 16), ("v0_untied", -16)):
        hs = dim // heads
        V = abs(vocab)
        n = V * dim + layers * dim + layers * (dim * dim + 2 * kv * hs * dim + dim * dim) + layers * dim \
            + layers * 3 * hidden * dim + dim
        vals = [rnd.gauss(0, 0.3) for _ in range(n)]
        import math
        for part in range(2):
            for pos in range(seq):
                for i in range(hs // 2):
                    a = pos * 10000.0 ** (-2.0 * i / hs)
                    vals.append(math.cos(a) if part == 0 else math.sin(a))
        if vocab < 0:
            vals += [rnd.gauss(0, 0.3) for _ in range(V * dim)]
        blob = struct.pack("<7i", dim, hidden, layers, heads, kv, vocab, seq) + struct.pack("<%df" % len(vals), *vals)
        put(d, name + ".bin", blob)
    legacy = os.path.join(d, "v0_untied.bin")
    for version in (1, 2):
        out = os.path.join(d, "v%d_untied.bin" % version)
        sys.argv = ["x", legacy, out, "--version", str(version), "--group-size", "8"]
        l2c.main()

    t = folder("llama2c_tokenizer")
    pieces = [("<unk>", 0.0), ("\n<s>\n", 0.0), ("\n</s>\n", 0.0)] + [("<0x%02X>" % b, 0.0) for b in range(256)]
    pieces += [(" ", -1.0), ("a", -2.0), ("b", -3.0), (" a", -4.0), ("ab", -5.0), (" ab", -6.0), ("\u00e9", -7.0)]
    blob = struct.pack("<i", max(len(p.encode()) for p, _ in pieces))
    for p, s in pieces:
        b = p.encode("utf-8")
        blob += struct.pack("<fi", s, len(b)) + b
    put(t, "tiny.bin", blob)


def text_seeds():
    d = folder("tokenizer_roundtrip")
    put(d, "ascii", "Hello world! It's 2024, isn't it?  Tabs\tand\nnew lines.   ")
    put(d, "utf8", "caf\u00e9 na\u00efve \u65e5\u672c\u8a9e \U0001F600 \u0410\u0431\u0432 e\u0301 \uA7CB's")
    put(d, "invalid", b"\xff\xfe a\x80b \xc3 \xed\xa0\x80 \xf4\x90\x80\x80 <|endoftext|> \x00")
    put(d, "code", "def f(x):\n    return x ** 2  # square\n\n\n")


if __name__ == "__main__":
    safetensors_seeds()
    hf_config_seeds()
    hf_tokenizer_seeds()
    gpt2_seeds()
    llama2c_seeds()
    text_seeds()
    print("seeds written under", OUT)
