"""Writes golden fixtures that tests/support/fixture.hpp reads.

A fixture is JSON: {"meta": {...}, "tensors": {name: {"shape": [...], "data": [...]}}}.
Values are written with 9 significant digits (float32) or 17 (float64).
"""
import json


def to_list(t):
    """Flatten a torch tensor or numpy array into (shape, list of floats)."""
    try:
        import torch
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().double().numpy()
    except ImportError:
        pass
    import numpy as np
    a = np.asarray(t, dtype=np.float64)
    return list(a.shape), [float(x) for x in a.reshape(-1)]


def save_fixture(path, tensors, meta=None):
    out = {"meta": meta or {}, "tensors": {}}
    for name, t in tensors.items():
        shape, data = to_list(t)
        out["tensors"][name] = {"shape": shape, "data": data}
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
