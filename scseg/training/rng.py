"""The random streams of a run (torch, numpy, Python) as plain values a checkpoint can hold
and ``weights_only=True`` can load: a resumed run continues them."""

from __future__ import annotations

import random

import numpy as np
import torch


def rng_state() -> dict:
    """torch, numpy and Python RNG states as tensors and ints (weights_only-loadable)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": py_gauss},
    }  # fmt: skip


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
