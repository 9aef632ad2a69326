"""What ``torch.compile`` buys: our 2D and 3D U-Nets, eager vs compiled, without attention
and with scSE, forward and training step (the same inputs as attention_overhead.py).

    uv run python benchmarks/compile.py [--dims 2 3] [--repeats 5]

Compilation happens in the warm-up and is reported apart (``compile_s``: the first forward
plus the first training step, compiled, less their eager times). Inductor caches compiled
graphs on disk, so ``compile_s`` is the cold cost only on a machine's first run (2D: 26 to
41 s on two CPU cores; 3D: about a minute). Under compilation the
recalibration takes its plain expressions (``scseg.layers.fused``) and inductor fuses them.
Results: benchmarks/results/compile[_<device>].{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attention_overhead import SETUPS, model_and_input
from common import interleaved, markdown_table, steps, write


def build(dims: int, attention: str, device: str, compiled: bool):
    model, x = model_and_input(dims, attention, device)
    return steps(torch.compile(model) if compiled else model, x, device)


def first_calls_s(fns) -> float:
    start = time.perf_counter()
    for fn in fns:
        fn()
    return time.perf_counter() - start


def run(dims: int, repeats: int, device: str) -> list[dict]:
    variants = {(a, c): build(dims, a, device, c) for a in ("none", "scse") for c in (False, True)}
    first = {key: first_calls_s(fns) for key, fns in variants.items()}  # compiles here
    forward = interleaved({k: v[0] for k, v in variants.items()}, repeats)
    train = interleaved({k: v[1] for k, v in variants.items()}, repeats)
    rows = []
    for attention, compiled in variants:
        key, eager = (attention, compiled), (attention, False)
        rows.append({
            "spatial_dims": dims, "attention": attention, "compiled": compiled,
            "forward": forward[key], "train_step": train[key],
            "forward_speedup": forward[eager]["median_s"] / forward[key]["median_s"],
            "train_step_speedup": train[eager]["median_s"] / train[key]["median_s"],
            "compile_s": max(0.0, first[key] - first[eager]) if compiled else 0.0,
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--suffix", default="", help="results file suffix, e.g. _h100")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = [r for d in args.dims for r in run(d, args.repeats, device)]
    lines = [
        [r["spatial_dims"], r["attention"], "compiled" if r["compiled"] else "eager",
         f"{r['forward']['median_s']:.3f} ({r['forward']['min_s']:.3f})",
         f"x{r['forward_speedup']:.2f}",
         f"{r['train_step']['median_s']:.3f} ({r['train_step']['min_s']:.3f})",
         f"x{r['train_step_speedup']:.2f}", f"{r['compile_s']:.0f}"]
        for r in rows
    ]  # fmt: skip
    headers = ["dims", "attention", "mode", "forward s", "speed-up", "train step s", "speed-up",
               "compile s"]  # fmt: skip
    table = markdown_table(headers, lines)
    meta = {"repeats": args.repeats, "inputs": {d: SETUPS[d]["shape"] for d in args.dims}}
    for path in write(f"compile{args.suffix}", rows, table, meta):
        print(path)
    print(table)


if __name__ == "__main__":
    main()
