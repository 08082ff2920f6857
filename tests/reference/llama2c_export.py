"""Re-exports a legacy llama2.c checkpoint in the versioned formats of llama2.c's export.py.

Usage: python3 llama2c_export.py LEGACY.bin OUT.bin --version {1,2} [--group-size 64]

Our own code for the layout export.py's version1_export / version2_export write (see
include/hyena/io/llama2c.hpp for the byte layout): a 256-byte header (uint32 magic "ak42",
int32 version, 7 int32 sizes with a positive vocab_size, uint8 shared_classifier, for version 2
int32 group_size, zero padding); version 1 then has every tensor in float32, norms first; version
2 keeps the norms in float32 and stores the matrices as int8 with one float32 scale per group
(scale = max|w| / 127, q = round-half-even(w / scale)), all int8 values first, then all scales.
The group size halves until it divides dim, as export.py does. Pure Python (struct only): every
float32 operation is done in double and rounded to float32, which is exact for one division.
tests/io/test_llama2c.cpp runs this (when python3 is present) and requires the C++ test writer to
produce the same bytes; the version 1 output of stories260K equals ../shared/cases/llama2c-v1.
"""
import argparse
import struct
import sys

MAGIC = 0x616B3432


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def read_legacy(path):
    blob = open(path, "rb").read()
    dim, hidden, L, heads, kv_heads, vocab, seq = struct.unpack_from("<7i", blob, 0)
    shared = vocab > 0
    V = abs(vocab)
    hs = dim // heads
    kv = kv_heads * hs
    at = [28]

    def take(n):
        vals = list(struct.unpack_from("<%df" % n, blob, at[0]))
        at[0] += 4 * n
        return vals

    def per_layer(n):
        return [take(n) for _ in range(L)]

    t = {}
    t["tok"] = take(V * dim)
    t["rms_att"] = per_layer(dim)
    t["wq"] = per_layer(dim * dim)
    t["wk"] = per_layer(kv * dim)
    t["wv"] = per_layer(kv * dim)
    t["wo"] = per_layer(dim * dim)
    t["rms_ffn"] = per_layer(dim)
    t["w1"] = per_layer(hidden * dim)
    t["w2"] = per_layer(dim * hidden)
    t["w3"] = per_layer(hidden * dim)
    t["rms_final"] = take(dim)
    take(seq * hs)  # freq_cis real + imag: not stored by the versioned formats
    t["cls"] = t["tok"] if shared else take(V * dim)
    assert at[0] == len(blob), "legacy file size does not match its header"
    return (dim, hidden, L, heads, kv_heads, V, seq), shared, t


def header(version, sizes, shared, group_size=None):
    h = struct.pack("<Ii", MAGIC, version) + struct.pack("<7i", *sizes) + struct.pack("<B", int(shared))
    if group_size is not None:
        h += struct.pack("<i", group_size)
    return h + b"\0" * (256 - len(h))


def pack_f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def quantize(w, group):
    q, scales = [], []
    for g in range(0, len(w), group):
        chunk = w[g:g + group]
        scale = f32(max(abs(x) for x in chunk) / 127.0)
        scales.append(scale)
        for x in chunk:
            v = f32(x / scale) if scale != 0 else 0.0
            q.append(int(round(v)))  # Python's round is half-to-even, like torch.round
    return q, scales


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("legacy")
    ap.add_argument("out")
    ap.add_argument("--version", type=int, required=True, choices=[1, 2])
    ap.add_argument("--group-size", type=int, default=64)
    a = ap.parse_args()
    sizes, shared, t = read_legacy(a.legacy)
    dim = sizes[0]
    matrices = [t["tok"], *t["wq"], *t["wk"], *t["wv"], *t["wo"], *t["w1"], *t["w2"], *t["w3"]]
    if not shared:
        matrices.append(t["cls"])
    norms = [*t["rms_att"], *t["rms_ffn"], t["rms_final"]]
    with open(a.out, "wb") as f:
        if a.version == 1:
            f.write(header(1, sizes, shared))
            for w in norms + matrices:
                f.write(pack_f32(w))
        else:
            group = a.group_size
            while dim % group != 0:
                group //= 2
            for w in matrices:
                assert len(w) % group == 0, "a weight's size is not a multiple of group_size %d" % group
            f.write(header(2, sizes, shared, group))
            for w in norms:
                f.write(pack_f32(w))
            all_scales = []
            for w in matrices:
                q, s = quantize(w, group)
                f.write(struct.pack("<%db" % len(q), *q))
                all_scales += s
            f.write(pack_f32(all_scales))
    return 0


if __name__ == "__main__":
    sys.exit(main())
