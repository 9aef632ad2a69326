"""What recalibration costs: our 2D and 3D U-Nets with none/cse/sse/scse, forward and
training step, time and peak memory.

    uv run python benchmarks/attention_overhead.py            # 2D and 3D, CPU or the GPU
    uv run python benchmarks/attention_overhead.py --dims 2 --repeats 15

2D: smp_unet on resnet34, 256x256, batch 8. 3D: the default unet, a 96^3 patch, batch 2.
Results: benchmarks/results/attention_overhead[_<device>].{json,md}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import extra_peak_mib, in_fresh_process, interleaved, markdown_table, steps, write

import scseg
from scseg.layers.fused import CHANNELS_LAST
from scseg.models import to_channels_last

ATTENTION = ("none", "cse", "sse", "scse")
SETUPS = {
    2: {"name": "smp_unet", "options": {"encoder_name": "resnet34"}, "in_channels": 3,
        "shape": (8, 3, 256, 256)},
    3: {"name": "unet", "options": {}, "in_channels": 1, "shape": (2, 1, 96, 96, 96)},
}  # fmt: skip


def model_and_input(dims: int, attention: str, device: str):
    """The benchmark model of ``dims`` with ``attention``, seeded, and its input batch."""
    setup = SETUPS[dims]
    torch.manual_seed(0)
    model = scseg.create_model(
        setup["name"], spatial_dims=dims, in_channels=setup["in_channels"], classes=2,
        attention=attention, **setup["options"],
    ).to(device)  # fmt: skip
    return model, torch.randn(setup["shape"], device=device)


def build(dims: int, attention: str, device: str, channels_last: bool = False):
    model, x = model_and_input(dims, attention, device)
    if channels_last:
        model, x = to_channels_last(model, dims), x.contiguous(memory_format=CHANNELS_LAST[x.ndim])
    forward, train_step = steps(model, x, device)
    params = sum(p.numel() for p in model.parameters())
    return forward, train_step, params


def _peak_worker(dims: int, attention: str, device: str, queue) -> None:
    torch.set_num_threads(torch.get_num_threads())
    _forward, train_step, _ = build(dims, attention, device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        train_step()
        queue.put(torch.cuda.max_memory_allocated() / 2**20)
        return
    queue.put(extra_peak_mib(train_step))


def peak_train_memory_mib(dims: int, attention: str, device: str) -> float:
    """Peak memory of one training step, in a fresh process (CPU, Linux: growth of the
    resident set above its size before the step)."""
    return float(in_fresh_process(_peak_worker, dims, attention, device))


def run(dims: int, repeats: int, device: str, channels_last: bool) -> list[dict]:
    built = {a: build(dims, a, device, channels_last) for a in ATTENTION}
    forward = interleaved({a: b[0] for a, b in built.items()}, repeats)
    train = interleaved({a: b[1] for a, b in built.items()}, repeats)
    rows = []
    for a in ATTENTION:
        rows.append(
            {
                "spatial_dims": dims,
                "attention": a,
                "params": built[a][2],
                "forward": forward[a],
                "train_step": train[a],
                "peak_train_mib": peak_train_memory_mib(dims, a, device),
            }
        )
    base = rows[0]
    for row in rows:
        for key in ("forward", "train_step"):
            row[f"{key}_ratio"] = row[key]["median_s"] / base[key]["median_s"]
        row["params_ratio"] = row["params"] / base["params"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3])
    parser.add_argument(
        "--repeats", type=int, nargs="+", default=[15, 5], help="one value, or one per dims"
    )
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--suffix", default="", help="results file suffix, e.g. _h100")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if len(args.repeats) not in (1, len(args.dims)):
        parser.error("--repeats takes one value, or one per --dims entry")
    per_dims = args.repeats * len(args.dims) if len(args.repeats) == 1 else args.repeats
    repeats = dict(zip(args.dims, per_dims, strict=True))
    rows = [r for d in args.dims for r in run(d, repeats[d], device, args.channels_last)]
    headers = ["dims", "attention", "params", "forward s", "x none", "train step s", "x none",
               "peak train MiB"]  # fmt: skip
    lines = []
    for r in rows:
        fwd, train = r["forward"], r["train_step"]
        lines.append([
            r["spatial_dims"], r["attention"],
            f"{r['params'] / 1e6:.2f} M (x{r['params_ratio']:.4f})",
            f"{fwd['median_s']:.3f} ({fwd['min_s']:.3f})", f"{r['forward_ratio']:.3f}",
            f"{train['median_s']:.3f} ({train['min_s']:.3f})", f"{r['train_step_ratio']:.3f}",
            f"{r['peak_train_mib']:.0f}",
        ])  # fmt: skip
    table = markdown_table(headers, lines)
    meta = {"repeats": repeats, "channels_last": args.channels_last,
            "inputs": {d: SETUPS[d]["shape"] for d in args.dims}}  # fmt: skip
    for path in write(f"attention_overhead{args.suffix}", rows, table, meta):
        print(path)
    print(table)


if __name__ == "__main__":
    main()
