"""Peak memory and time of 3D prediction against the number of classes.

``scseg.inference.predict_volume`` on a 1 mm 182x218x182 volume (the FSL MNI152 template
of the parcellation sample, or any ``--volume``) with an untrained ``unet`` trained "at"
2 mm (windows 64^3, overlap 0.5), for 3, 32 and 137 classes. Each run is a fresh process;
the number is the peak resident memory the call adds. ``--before REV`` measures a git
revision too (temporary worktree, same environment).

    uv run python benchmarks/predict_memory.py --before 27f0832
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import extra_peak_mib, markdown_table, revision_trees, write

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VOLUME = ROOT.parent / "shared/data/samples/brain_parcellation3d/MNI152_T1_1mm_brain.nii.gz"
CLASSES = (3, 32, 137)


def worker(volume: str, classes: int) -> None:
    import torch

    import scseg
    from scseg.inference import LoadedModel
    from scseg.inference.volume import predict_volume

    torch.manual_seed(0)
    net = scseg.create_model("unet", spatial_dims=3, in_channels=1, classes=classes,
                             channels=(8, 16, 32, 64)).eval()  # fmt: skip
    info = {"patch_size": [64, 64, 64], "spacing": [2.0, 2.0, 2.0], "intensity": "zscore"}
    model = LoadedModel(net, 3, 1, classes, {}, info)
    seconds: list[float] = []

    def run() -> None:
        start = time.perf_counter()
        predict_volume(model, volume, overlap=0.5, sw_batch_size=2)
        seconds.append(time.perf_counter() - start)

    peak = extra_peak_mib(run)
    print(json.dumps({"peak_mib": peak, "seconds": seconds[0]}))


def measure(tree: Path, volume: str, classes: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, __file__, "--worker", "--volume", volume, "--classes", str(classes)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", default=str(DEFAULT_VOLUME))
    parser.add_argument("--before", help="a git revision to measure as well")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--classes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.volume, args.classes)
    rows = []
    with revision_trees(ROOT, args.before) as trees:
        for classes in CLASSES:
            row: dict = {"classes": classes}
            for label, tree in trees.items():
                row[label] = measure(tree, args.volume, classes)
            rows.append(row)
            print(row, flush=True)
    headers = ["classes"]
    for label in trees:
        headers += [f"{label}: extra peak", f"{label}: time", f"{label}: peak / 3 classes"]
    table = []
    for row in rows:
        cells = [row["classes"]]
        for label in trees:
            base = rows[0][label]["peak_mib"]
            cells += [f"{row[label]['peak_mib']:.0f} MiB", f"{row[label]['seconds']:.1f} s",
                      f"x{row[label]['peak_mib'] / base:.2f}"]  # fmt: skip
        table.append(cells)
    meta = {"volume": Path(args.volume).name, "revisions": list(trees)}
    for path in write("predict_memory", rows, markdown_table(headers, table), meta):
        print(path)


if __name__ == "__main__":
    main()
