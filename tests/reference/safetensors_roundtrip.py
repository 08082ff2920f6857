"""Checks a safetensors file written by tests/io/test_safetensors_python.cpp.

Usage: python3 safetensors_roundtrip.py FILE [--pure]

Uses the `safetensors` package (its Rust parser validates the header and layout) when it
is importable, else a small pure-Python reader of the format; --pure forces the latter.
Expected contents (row-major index i):
  f32  F32  [3, 4]  i * 0.5 - 1
  f64  F64  [2, 3]  1 / (i + 1)
  f16  F16  [5]     (i - 2) * 0.25
  bf16 BF16 [2, 2]  i + 1
  s    F32  []      3.5
  z    F32  [0, 3]  (empty)
  __metadata__ {"creator": "hyena", "format": "pt"}
Exits 0 when everything matches, 1 with a message otherwise.
"""
import json
import struct
import sys

FORMATS = {"F64": ("d", 8), "F32": ("f", 4), "F16": ("e", 2), "BF16": (None, 2)}


def decode(dtype, raw):
    fmt, size = FORMATS[dtype]
    n = len(raw) // size
    if dtype == "BF16":  # the top 16 bits of a float32
        return [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in struct.unpack("<%dH" % n, raw)]
    return list(struct.unpack("<%d%s" % (n, fmt), raw))


def read_pure(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        tensors[name] = (e["dtype"], list(e["shape"]), decode(e["dtype"], data[b:end]))
    return tensors, meta, "pure-python"


def read_safetensors(path):
    import safetensors  # noqa: F401 (raises ImportError when missing)
    from safetensors import deserialize, safe_open

    with open(path, "rb") as f:
        items = deserialize(f.read())
    tensors = {name: (e["dtype"], list(e["shape"]), decode(e["dtype"], bytes(e["data"]))) for name, e in items}
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
        # numpy has no bfloat16; cross-check the others through safetensors' own numpy path.
        for name in f.keys():
            if tensors[name][0] != "BF16":
                arr = f.get_tensor(name)
                if [float(x) for x in arr.reshape(-1)] != tensors[name][2]:
                    raise SystemExit("numpy view of %s differs from its raw bytes" % name)
    return tensors, meta, "safetensors " + safetensors.__version__


def expected():
    return {
        "f32": ("F32", [3, 4], [i * 0.5 - 1 for i in range(12)]),
        "f64": ("F64", [2, 3], [1.0 / (i + 1) for i in range(6)]),
        "f16": ("F16", [5], [(i - 2) * 0.25 for i in range(5)]),
        "bf16": ("BF16", [2, 2], [float(i + 1) for i in range(4)]),
        "s": ("F32", [], [3.5]),
        "z": ("F32", [0, 3], []),
    }


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: safetensors_roundtrip.py FILE [--pure]")
    path, pure = sys.argv[1], "--pure" in sys.argv[2:]
    reader = read_pure
    if not pure:
        try:
            import safetensors  # noqa: F401

            reader = read_safetensors
        except ImportError:
            pass
    tensors, meta, how = reader(path)
    errors = []
    want = expected()
    if sorted(tensors) != sorted(want):
        errors.append("names %s != %s" % (sorted(tensors), sorted(want)))
    for name, (dtype, shape, values) in want.items():
        if name not in tensors:
            continue
        got = tensors[name]
        if got[0] != dtype or got[1] != shape:
            errors.append("%s: got %s %s, want %s %s" % (name, got[0], got[1], dtype, shape))
        if got[2] != values:
            errors.append("%s: values %s != %s" % (name, got[2], values))
    if meta != {"creator": "hyena", "format": "pt"}:
        errors.append("metadata %s" % meta)
    if errors:
        print("safetensors_roundtrip (%s): FAIL\n  " % how + "\n  ".join(errors))
        return 1
    print("safetensors_roundtrip (%s): OK, %d tensors" % (how, len(tensors)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
