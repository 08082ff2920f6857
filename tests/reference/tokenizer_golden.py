"""Golden ids for the byte-level BPE tokenizers, from Hugging Face `tokenizers` (pip install tokenizers).

Writes, under tests/reference/fixtures/:
  tokenizer_wikitext_test.json  for wikitext-2-raw/wiki.test.raw (read as bytes, CRLF kept), per tokenizer:
                                the id count, FNV-1a 64 of the ids (little-endian int32 bytes), the first 2000 ids
  tokenizer_tricky.json         tricky strings with their ids and decode (special tokens kept) per tokenizer
GPT-2 is built from encoder.json + vocab.bpe with models.BPE (ByteLevel, no prefix space, <|endoftext|> special)
and checked against OpenAI's encoder.py algorithm (re-implemented below with the `regex` module).
Run: python3 tests/reference/tokenizer_golden.py [DATA_DIR]   (default ../shared/data from the repo root)
"""
import json
import os
import sys

import regex
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared", "data")
OUT = os.path.join(HERE, "fixtures")


def fnv1a64(ids):
    h = 0xCBF29CE484222325
    for i in ids:
        for b in int(i).to_bytes(4, "little", signed=True):
            h ^= b
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def neox():
    return Tokenizer.from_file(os.path.join(DATA, "gpt-neox-20b-tokenizer", "20B_tokenizer.json"))


def gpt2():
    d = os.path.join(DATA, "gpt2-bpe")
    tok = Tokenizer(models.BPE.from_file(os.path.join(d, "encoder.json"), os.path.join(d, "vocab.bpe")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    assert tok.token_to_id("<|endoftext|>") == 50256
    return tok


class OpenAIGPT2:
    """OpenAI's gpt-2 encoder.py algorithm (bpe by lowest rank, all occurrences per step)."""

    def __init__(self):
        d = os.path.join(DATA, "gpt2-bpe")
        self.encoder = json.load(open(os.path.join(d, "encoder.json"), encoding="utf-8"))
        lines = open(os.path.join(d, "vocab.bpe"), encoding="utf-8").read().split("\n")[1:-1]
        self.ranks = {tuple(m.split()): i for i, m in enumerate(lines)}
        bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
        cs, n = bs[:], 0
        for b in range(256):
            if b not in bs:
                bs.append(b)
                cs.append(256 + n)
                n += 1
        self.byte_encoder = dict(zip(bs, map(chr, cs)))
        self.pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            new, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    new.append(word[i] + word[i + 1])
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
        self.cache[token] = word
        return word

    def encode(self, text):
        ids = []
        for t in regex.findall(self.pat, text):
            t = "".join(self.byte_encoder[b] for b in t.encode("utf-8"))
            ids.extend(self.encoder[p] for p in self.bpe(t))
        return ids


TRICKY = [
    "", " ", "  ", "   ", "a", " a", "a ", "  a", "hello world", "Hello, World!", " leading", "trailing ",
    "multiple   spaces   here", "tabs\tand\t\ttabs", "new\nlines\n\n\nand\r\nCRLF", "  \n  \n", "end with spaces   ",
    "\t \t x", " \u00a0x\u3000y\u2003z", "a\u0085b\u2028c\u200bd",
    "it's they'll we're I've she'd I'm don't", "IT'S THEY'LL WE'RE", "'s 'll 're '' ''s", "rock 'n' roll",
    "12345 678901 3.14159 1,000,000 0x1F 2nd", "\u0661\u0662\u0663 \u2155 \u00bd \u2460 \u0968",
    "na\u00efve caf\u00e9 \u00fcber se\u00f1or", "cafe\u0301 A\u030a \u1e9b\u0323 q\u0307\u0323 \u1100\u1161\u11a8",
    "\u212b \u2126 \u0958 \u00c5", "\u00e9\u0301\u0301 e\u0327\u0301",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5",
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \u0928\u092e\u0938\u094d\u0924\u0947 \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "\u4f60\u597d\uff0c\u4e16\u754c\u3002\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \ud55c\uad6d\uc5b4",
    "\U0001F600 \U0001F44D\U0001F3FD \U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 \U0001F1EF\U0001F1F5\U0001F1FA\U0001F1F8",
    "\u2764\ufe0f \U0001F3F3\ufe0f\u200d\U0001F308 a\U0001F600b", "\U00010348\U0001D400 \U00020000",
    "<|endoftext|>", "before<|endoftext|>after", "a <|endoftext|> b<|endoftext|><|endoftext|>", "<|padding|>x",
    "<|endoftext", "x" + " " * 30 + "y", " " * 2 + "z", " " * 24, " " * 25, " " * 50 + "\n", "\u00e9" + " " * 5 + "\u0301",
    "def f(x):\n    return x  # comment\n", "$100 + 50% = ???!!! ...\u2014\u2026", "\u00ad\u00a9\u00ae\u2122 \u00b5",
    "\x00\x01\x1c\x1f\x7f", "a" * 300, "ab" * 100 + " " + "\u00e9" * 50,
]


def random_nfc_cases(n=24, seed=1):
    """Random mixes of bases, combining marks of several classes, jamo and singletons: exercise NFC."""
    import random
    rnd = random.Random(seed)
    pool = ("a e o A E u n c s ", "\u0301", "\u0300", "\u0308", "\u0323", "\u0327", "\u031b", "\u0345", "\u05b0",
            "\u1100", "\u1161", "\u11a8", "\uac00", "\u212b", "\u2126", "\u0958", "\u00e9", "\u1e9b", "\u0344",
            "\u0f73", "\u3099", "\u304b", "\u0b47", "\u0b3e", "\u00c5", " ", "x")
    return ["".join(rnd.choice(pool) for _ in range(rnd.randrange(1, 30))) for _ in range(n)]


def main():
    tn, tg, ref = neox(), gpt2(), OpenAIGPT2()
    with open(os.path.join(DATA, "wikitext-2-raw", "wiki.test.raw"), "rb") as f:
        text = f.read().decode("utf-8")
    wiki = {}
    for name, tok in (("neox", tn), ("gpt2", tg)):
        ids = tok.encode(text).ids
        wiki[name] = {"count": len(ids), "fnv1a64": fnv1a64(ids), "first": ids[:2000]}
        print(name, len(ids), wiki[name]["fnv1a64"])
    assert ref.encode(text) == tg.encode(text).ids, "HF GPT-2 disagrees with OpenAI's algorithm on wiki.test.raw"
    with open(os.path.join(OUT, "tokenizer_wikitext_test.json"), "w") as f:
        json.dump({"file": "wikitext-2-raw/wiki.test.raw", "bytes": len(text.encode("utf-8")), **wiki}, f)

    cases = []
    for s in TRICKY + random_nfc_cases():
        case = {"text": s}
        for name, tok in (("neox", tn), ("gpt2", tg)):
            ids = tok.encode(s).ids
            case[name] = ids
            case[name + "_decoded"] = tok.decode(ids, skip_special_tokens=False)
        if "<|endoftext|>" not in s:
            assert ref.encode(s) == case["gpt2"], f"HF GPT-2 disagrees with OpenAI's algorithm on {s!r}"
        cases.append(case)
    with open(os.path.join(OUT, "tokenizer_tricky.json"), "w") as f:
        json.dump({"cases": cases}, f, ensure_ascii=True, indent=0)
    print(len(cases), "tricky cases")


if __name__ == "__main__":
    main()
