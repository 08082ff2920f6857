"""Times Hugging Face `tokenizers` on the file bench_tokenizer encodes (WikiText-2 train by default).

Per tokenizer (GPT-NeoX-20B tokenizer.json; GPT-2 from encoder.json + vocab.bpe), median of 3:
  single: one encode() of the whole text (one thread, as bench_tokenizer does)
  batch:  encode_batch() over the lines (HF spreads this over all cores; RAYON_NUM_THREADS caps it)
Each run uses a fresh tokenizer, so its word cache starts empty, like bench_tokenizer's "cold".
Run: python3 benchmarks/peers/tokenizer_peer.py [TEXT_FILE]
"""
import json
import os
import statistics
import sys
import time

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

DATA = os.environ.get("HYENA_DATA_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                                       "shared", "data")


def neox():
    return Tokenizer.from_file(os.path.join(DATA, "gpt-neox-20b-tokenizer", "20B_tokenizer.json"))


def gpt2():
    d = os.path.join(DATA, "gpt2-bpe")
    tok = Tokenizer(models.BPE.from_file(os.path.join(d, "encoder.json"), os.path.join(d, "vocab.bpe")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    return tok


def timed(fn):
    a = time.perf_counter()
    out = fn()
    return time.perf_counter() - a, out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(DATA, "wikitext-2", "wiki.train.tokens")
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    lines = text.splitlines(keepends=True)
    for name, make in (("gpt-neox-20b", neox), ("gpt2", gpt2)):
        single, batch = [], []
        for _ in range(3):
            tok = make()
            t, enc = timed(lambda: tok.encode(text))
            single.append(t)
            n_single = len(enc.ids)
            tok = make()
            t, encs = timed(lambda: tok.encode_batch(lines))
            batch.append(t)
            n_batch = sum(len(e.ids) for e in encs)
        nbytes = len(text.encode("utf-8"))
        print(json.dumps({"tokenizer": name, "bytes": nbytes, "tokens_single": n_single, "tokens_batch": n_batch,
                          "single_s": round(statistics.median(single), 3),
                          "batch_s": round(statistics.median(batch), 3),
                          "single_MB_per_s": round(nbytes / statistics.median(single) / 1e6, 2)}))


if __name__ == "__main__":
    main()
