"""Memory and time of the per-class confusion counts behind validation Dice/IoU.

Before: (B x classes x voxels) boolean one-hot tensors (the reference kept in the tests);
after: one bincount over ``target * (C+1) + pred`` per case (``scseg.training.metrics``).
One brain-sized volume (2 mm: 91x109x91; 1 mm: 182x218x182) with 3, 32 and 137 classes,
each measurement in a fresh process (extra peak RSS over the inputs, seconds for one call).

    uv run python benchmarks/metrics_memory.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from common import extra_peak_mib, in_fresh_process, markdown_table, write  # noqa: E402

SHAPES = {"2 mm": (91, 109, 91), "1 mm": (182, 218, 182)}


def _worker(impl: str, classes: int, shape: tuple, queue) -> None:
    from scseg.training.metrics import confusion_counts
    from tests.training.test_metrics import _one_hot_counts

    fn = confusion_counts if impl == "bincount" else _one_hot_counts
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, classes, (1, *shape), generator=g)
    pred = torch.where(torch.rand(target.shape, generator=g) < 0.8, target, 0)
    fn(pred[:, :8], target[:, :8], classes)  # warm-up on a slab
    times: list[float] = []

    def run() -> None:
        start = time.perf_counter()
        fn(pred, target, classes)
        times.append(time.perf_counter() - start)

    queue.put((extra_peak_mib(run), times[0]))


def measure(impl: str, classes: int, shape: tuple) -> tuple[float, float]:
    return in_fresh_process(_worker, impl, classes, shape)


def main() -> None:
    rows, table = [], []
    for grid, shape in SHAPES.items():
        for classes in (3, 32, 137):
            found = {impl: measure(impl, classes, shape) for impl in ("one-hot", "bincount")}
            row = {"grid": grid, "voxels": int(torch.tensor(shape).prod()), "classes": classes}
            for impl, (mib, seconds) in found.items():
                row[f"{impl}_peak_mib"], row[f"{impl}_s"] = round(mib, 1), round(seconds, 3)
            rows.append(row)
            table.append([grid, classes, f"{row['one-hot_peak_mib']:.0f} MiB",
                          f"{row['one-hot_s']:.2f} s", f"{row['bincount_peak_mib']:.0f} MiB",
                          f"{row['bincount_s']:.2f} s"])  # fmt: skip
            print(table[-1], flush=True)
    headers = ["grid", "classes", "before: extra peak", "before: time", "after: extra peak",
               "after: time"]  # fmt: skip
    meta = {"what": "confusion_counts on one volume, before (one-hot) and after (bincount)"}
    for path in write("metrics_memory", rows, markdown_table(headers, table), meta):
        print(path)


if __name__ == "__main__":
    main()
