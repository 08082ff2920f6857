"""The safetensors rule set, with Python's `safetensors` reader as the oracle.

Writes tests/reference/fixtures/safetensors_rules.json: a list of small files (well formed and
malformed, one rule broken at a time), each with the oracle's verdict:
    [{"name": ..., "why": ..., "hex": <the whole file>, "accept": bool, "oracle": <its error or "">}]
tests/io/test_safetensors_rules.cpp opens every file with hyena's reader and requires the same
verdict (hyena's own message must name the file; for rejections the test also checks a keyword),
except for the cases in STRICTER, where hyena follows the written specification and rejects what
this reader lets through ("hyena_accept" false, "stricter" says why).

Needs the `safetensors` package (the Rust parser behind safetensors.deserialize), e.g.
    pip install --target /tmp/pyst safetensors==0.8.0 numpy
    PYTHONPATH=/tmp/pyst python3 tests/reference/safetensors_rules.py
"""
import json
import os
import struct
import sys

import safetensors
from safetensors import deserialize

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "safetensors_rules.json")


def le64(n):
    return struct.pack("<Q", n)


def file_of(header, data=b"", header_len=None):
    h = header.encode("utf-8") if isinstance(header, str) else header
    return le64(len(h) if header_len is None else header_len) + h + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def js(obj):
    return json.dumps(obj, separators=(",", ":"))


F4 = struct.pack("<f", 1.5)
F8 = struct.pack("<ff", 1.5, -2.0)

# (name, why, file bytes, keyword hyena's message must contain when it rejects)
CASES = []


def case(name, why, blob, keyword=""):
    CASES.append((name, why, blob, keyword))


two = {"a": entry("F32", [2], 0, 8), "b": entry("F32", [1], 8, 12)}
case("valid-two-tensors", "two F32 tensors tiling the data", file_of(js(two), F8 + F4))
case("valid-padded", "header padded with spaces to a multiple of 8", file_of(js(two) + " " * 11, F8 + F4))
case("valid-empty-header", "no tensors, no data", file_of("{}"))
case("valid-metadata-only", "only __metadata__", file_of(js({"__metadata__": {"format": "pt"}})))
case("valid-order-in-json", "JSON order differs from offset order",
     file_of(js({"b": entry("F32", [1], 8, 12), "a": entry("F32", [2], 0, 8)}), F8 + F4))
case("valid-scalar", "rank-0 tensor", file_of(js({"s": entry("F32", [], 0, 4)}), F4))
case("valid-empty-tensor-first", "an empty tensor at offset 0 before a full one",
     file_of(js({"e": entry("F32", [0, 3], 0, 0), "a": entry("F32", [2], 0, 8)}), F8))
case("valid-empty-tensor-last", "an empty tensor at the end",
     file_of(js({"a": entry("F32", [2], 0, 8), "z": entry("F16", [4, 0], 8, 8)}), F8))
case("valid-mixed-dtypes", "F16, BF16, I8, U8, BOOL, I64 back to back",
     file_of(js({"h": entry("F16", [2], 0, 4), "b": entry("BF16", [1], 4, 6), "i": entry("I8", [2], 6, 8),
                 "u": entry("U8", [1], 8, 9), "q": entry("BOOL", [1], 9, 10), "l": entry("I64", [1], 10, 18)}),
             bytes(18)))
case("valid-escaped-key", "a key spelled with a JSON escape", file_of('{"\\u0077":' + js(entry("F32", [1], 0, 4)) + "}", F4))
case("valid-unicode-key", "a non-ASCII key", file_of(js({"poids.é": entry("F32", [1], 0, 4)}).encode("utf-8"), F4))

# Keys unique.
dup = '{"w":' + js(entry("F32", [1], 0, 4)) + ',"w":' + js(entry("F32", [1], 4, 8)) + "}"
case("duplicate-key", "tensor w twice, second range right after the first", file_of(dup, F8), "duplicate")
dup_same = '{"w":' + js(entry("F32", [1], 0, 4)) + ',"w":' + js(entry("F32", [1], 0, 4)) + "}"
case("duplicate-key-same-entry", "tensor w twice with the same entry", file_of(dup_same, F4), "duplicate")
dup_esc = '{"w":' + js(entry("F32", [1], 0, 4)) + ',"\\u0077":' + js(entry("F32", [1], 4, 8)) + "}"
case("duplicate-key-escaped", "w and \\u0077 are the same key", file_of(dup_esc, F8), "duplicate")
dup_meta = '{"__metadata__":{"k":"1","k":"2"}}'
case("duplicate-metadata-key", "a __metadata__ key twice", file_of(dup_meta), "duplicate")
dup_field = '{"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
case("duplicate-field", "dtype twice in one entry", file_of(dup_field, F4), "duplicate")
dup_metadata_entry = '{"__metadata__":{},"__metadata__":{}}'
case("duplicate-metadata", "__metadata__ twice", file_of(dup_metadata_entry), "duplicate")

# Ranges tile the data section: start at 0, no gap, no overlap, no tail.
case("gap-between-tensors", "4 unowned bytes between a and b",
     file_of(js({"a": entry("F32", [2], 0, 8), "b": entry("F32", [1], 12, 16)}), F8 + bytes(4) + F4), "gap")
case("gap-at-start", "the first tensor starts at 4",
     file_of(js({"a": entry("F32", [1], 4, 8)}), bytes(4) + F4), "gap")
case("trailing-bytes", "4 bytes after the last tensor", file_of(js(two), F8 + F4 + bytes(4)), "trailing")
case("data-without-tensors", "no tensors but 4 data bytes", file_of("{}", bytes(4)), "trailing")
case("overlap", "b starts inside a",
     file_of(js({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}), bytes(12)), "overlap")
case("same-range", "a and b share their range",
     file_of(js({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 0, 4)}), F4), "overlap")
case("range-past-end", "the range runs past the data section",
     file_of(js({"a": entry("F32", [2], 0, 8)}), F4), "beyond")
case("begin-after-end", "data_offsets [8, 4]",
     file_of(js({"a": entry("F32", [0], 8, 4)}), F8), "begin is after end")
case("empty-tensor-inside-gap", "an empty tensor at 12 while the data is 8 bytes",
     file_of(js({"a": entry("F32", [2], 0, 8), "e": entry("F32", [0], 12, 12)}), F8), "gap")

# Each range is dtype size x element count.
case("range-too-short", "F32 [3] in 8 bytes", file_of(js({"a": entry("F32", [3], 0, 8)}), F8), "needs 12")
case("range-too-long", "F32 [1] in 8 bytes", file_of(js({"a": entry("F32", [1], 0, 8)}), F8), "needs 4")
case("f64-size", "F64 [1] in 4 bytes", file_of(js({"a": entry("F64", [1], 0, 4)}), F4), "needs 8")
case("shape-overflow", "a shape whose byte count overflows 64 bits",
     file_of(js({"a": entry("F32", [4611686018427387904, 4611686018427387904], 0, 8)}), F8), "2^64")
case("shape-overflow-with-zero", "a huge dimension times 0 is 0 elements",
     file_of(js({"a": entry("F32", [18446744073709551615, 18446744073709551615, 0], 0, 0)})), "2^64")

# Offsets and dims are plain non-negative integers.
case("offset-negative", "data_offsets [-4, 0]", file_of('{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', F4),
     "non-negative integers")
case("offset-float", "data_offsets [0.0, 4.0]",
     file_of('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0.0,4.0]}}', F4), "non-negative integers")
case("offset-exponent", "data_offsets [0, 4e0]",
     file_of('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4e0]}}', F4), "non-negative integers")
case("offset-minus-zero", "data_offsets [-0, 4]",
     file_of('{"a":{"dtype":"F32","shape":[1],"data_offsets":[-0,4]}}', F4), "non-negative integers")
case("offset-string", 'data_offsets ["0", "4"]',
     file_of('{"a":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}}', F4), "non-negative integers")
case("offset-too-big", "an offset beyond 2^64",
     file_of('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551616]}}', F4), "non-negative integers")
case("offsets-three", "data_offsets with three numbers",
     file_of('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}', F4), "data_offsets")
case("offsets-one", "data_offsets with one number",
     file_of('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', F4), "data_offsets")
case("offsets-object", "data_offsets an object",
     file_of('{"a":{"dtype":"F32","shape":[1],"data_offsets":{"0":4}}}', F4), "data_offsets")
case("shape-negative", "shape [-1]", file_of('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', F4),
     "non-negative integers")
case("shape-float", "shape [1.0]", file_of('{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', F4),
     "non-negative integers")
case("shape-minus-zero", "shape [-0]", file_of('{"a":{"dtype":"F32","shape":[-0],"data_offsets":[0,0]}}'),
     "non-negative integers")
case("shape-string", 'shape ["1"]', file_of('{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}', F4),
     "non-negative integers")
case("shape-not-array", "shape 1", file_of('{"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}', F4), "shape")

# Entry fields.
# Element types the format knows and hyena lists but cannot read (sizes in bits for F4 and F6).
case("valid-c64", "a C64 tensor", file_of(js({"c": entry("C64", [1], 0, 8)}), F8))
case("valid-f8-e8m0", "an F8_E8M0 tensor", file_of(js({"c": entry("F8_E8M0", [2], 0, 2)}), bytes(2)))
case("valid-f4", "two F4 values in one byte", file_of(js({"c": entry("F4", [2], 0, 1)}), bytes(1)))
case("f4-odd", "three F4 values (12 bits)", file_of(js({"c": entry("F4", [3], 0, 2)}), bytes(2)), "whole number of bytes")
case("f4-odd-short", "three F4 values in one byte", file_of(js({"c": entry("F4", [3], 0, 1)}), bytes(1)), "whole number of bytes")
case("valid-f6", "four F6_E2M3 values in three bytes", file_of(js({"c": entry("F6_E2M3", [4], 0, 3)}), bytes(3)))
case("f6-partial", "one F6_E3M2 value", file_of(js({"c": entry("F6_E3M2", [1], 0, 1)}), bytes(1)), "whole number of bytes")
case("dtype-unknown", "dtype F7", file_of(js({"a": entry("F7", [1], 0, 4)}), F4), "dtype")
case("dtype-lowercase", "dtype f32", file_of(js({"a": entry("f32", [1], 0, 4)}), F4), "dtype")
case("dtype-missing", "no dtype", file_of('{"a":{"shape":[1],"data_offsets":[0,4]}}', F4), "dtype")
case("shape-missing", "no shape", file_of('{"a":{"dtype":"F32","data_offsets":[0,4]}}', F4), "shape")
case("offsets-missing", "no data_offsets", file_of('{"a":{"dtype":"F32","shape":[1]}}', F4), "data_offsets")
case("entry-extra-field", "an unknown field in an entry",
     file_of('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}', F4), "")
case("entry-not-object", "an entry that is a number", file_of('{"a":5}'), "not a JSON object")
case("metadata-not-string", "a __metadata__ value that is a number", file_of('{"__metadata__":{"k":1}}'),
     "__metadata__")
case("metadata-not-object", "__metadata__ a list", file_of('{"__metadata__":["k"]}'), "__metadata__")
case("metadata-null", "__metadata__ null", file_of('{"__metadata__":null}'), "")

# The header: one UTF-8 JSON object, padded only with spaces.
case("nul-padded-header", "a NUL after the JSON inside the header length", file_of(js(two) + "\0", F8 + F4), "padding")
case("nul-then-json", "a NUL and a second JSON object after the first",
     file_of(js(two) + '\0{"x":' + js(entry("F32", [1], 0, 4)) + "}", F8 + F4), "byte 0x00")
case("tab-padded-header", "the header padded with a tab", file_of(js(two) + "\t", F8 + F4), "padding")
case("newline-padded-header", "the header padded with a newline", file_of(js(two) + "\n", F8 + F4), "padding")
case("cr-padded-header", "the header padded with a carriage return", file_of(js(two) + "\r", F8 + F4), "padding")
case("leading-space", "a space before the opening brace", file_of(" " + js(two), F8 + F4), "begin with")
case("leading-newline", "a newline before the opening brace", file_of("\n" + js(two), F8 + F4), "begin with")
case("bom", "a UTF-8 byte order mark before the JSON", file_of(b"\xef\xbb\xbf" + js(two).encode(), F8 + F4), "begin with")
case("two-objects", "two JSON objects in the header", file_of(js(two) + js({}), F8 + F4), "JSON")
case("header-array", "the header is an array", file_of("[]"), "JSON object")
case("header-string", "the header is a string", file_of('"x"'), "JSON object")
case("header-null", "the header is null", file_of("null"), "JSON object")
case("header-empty", "zero-length header", file_of(""), "empty")
case("header-spaces-only", "a header of spaces", file_of("        "), "empty")
case("header-bad-json", "truncated JSON", file_of('{"a":{"dtype":'), "JSON")
case("header-trailing-comma", "a trailing comma", file_of('{"__metadata__":{},}'), "JSON")
case("header-comment", "a comment", file_of('{/*c*/}'), "JSON")
case("header-invalid-utf8", "an invalid UTF-8 byte in a key",
     file_of(b'{"a\xff":' + js(entry("F32", [1], 0, 4)).encode() + b"}", F4), "JSON")
case("header-overlong-utf8", "an overlong UTF-8 encoding of '/'",
     file_of(b'{"a\xc0\xaf":' + js(entry("F32", [1], 0, 4)).encode() + b"}", F4), "JSON")
case("header-lone-surrogate", "an escaped lone surrogate in a key",
     file_of('{"a\\ud800":' + js(entry("F32", [1], 0, 4)) + "}", F4), "JSON")
case("header-control-char", "a raw control character inside a string",
     file_of('{"a\x01":' + js(entry("F32", [1], 0, 4)) + "}", F4), "JSON")

# The length prefix.
case("short-file", "fewer than 8 bytes", b"\x02\x00\x00", "truncated")
case("empty-file", "no bytes", b"", "truncated")
case("header-len-past-end", "N runs past the end of the file", file_of("{}", b"", header_len=100), "runs past")
case("header-len-huge", "N beyond the 100 MB cap", file_of("{}", b"", header_len=1 << 40), "limit")
case("header-len-max", "N = 2^64 - 1", file_of("{}", b"", header_len=(1 << 64) - 1), "limit")
case("header-len-short", "N cuts the JSON short", file_of(js(two), F8 + F4, header_len=10), "JSON")


# Where hyena is deliberately stricter than the oracle, following the format's specification
# (safetensors README: the header "MUST begin with a {" and "MAY be trailing padded with
# whitespace (0x20)") and issue 12's rule that keys are unique: two readers of one file must never
# see two different headers.
STRICTER = {
    "duplicate-key-same-entry": "keys unique (the oracle keeps the last of two equal entries)",
    "duplicate-metadata-key": "keys unique (the oracle keeps the last __metadata__ value)",
    "tab-padded-header": "only spaces pad the header (the oracle allows any JSON whitespace)",
    "newline-padded-header": "only spaces pad the header (the oracle allows any JSON whitespace)",
    "cr-padded-header": "only spaces pad the header (the oracle allows any JSON whitespace)",
    "leading-space": "the header begins with '{' (the oracle skips leading JSON whitespace)",
    "leading-newline": "the header begins with '{' (the oracle skips leading JSON whitespace)",
}


def verdict(blob):
    try:
        deserialize(blob)
        return True, ""
    except Exception as e:  # noqa: BLE001 (the oracle's verdict is the point)
        return False, str(e)


def main():
    out = []
    names = set()
    for name, why, blob, keyword in CASES:
        assert name not in names, name
        names.add(name)
        ok, msg = verdict(blob)
        stricter = STRICTER.get(name, "")
        assert not stricter or ok, name + ": listed as stricter but the oracle rejects it"
        out.append({"name": name, "why": why, "hex": blob.hex(), "accept": ok, "oracle": msg,
                    "hyena_accept": ok and not stricter, "stricter": stricter, "keyword": keyword})
        print("%-28s %s  %s" % (name, "accept" if ok else "REJECT", msg))
    with open(OUT, "w") as f:
        json.dump({"oracle": "safetensors " + safetensors.__version__, "cases": out}, f, indent=1)
        f.write("\n")
    print("wrote %d cases to %s" % (len(out), OUT))


if __name__ == "__main__":
    sys.exit(main())
