"""Training on sparse annotations: the brain tissue sample with only some of its voxels
labelled, validated on the dense labels, against dense training at equal steps.

The training case (``icbm_inferior``, the template's lower half, 1 mm) keeps its labels on
whole planes drawn at random (sagittal, coronal or axial, seeded) until they cover the
wanted share of its voxels: a few slices per case, as an annotator would draw them. Every
other voxel gets the ignore value 3, which ``dataset.json`` declares as nnU-Net v2 does
(``"labels": {..., "ignore": 3}``). The validation case (``icbm_superior``) keeps its dense
labels. Each share trains the 3D quickstart (``configs/quickstart_3d.yaml``: 2 mm, scSE
U-Net) for the same number of steps; 100 % is ordinary dense training (no ignore label).

    uv run python benchmarks/sparse_labels.py run [--shares 1.0 0.2 0.05 0.01] [--epochs 8]
    uv run python benchmarks/sparse_labels.py report

Results: ``benchmarks/results/sparse_labels.{md,csv}``, with the two-threshold Otsu baseline
(no learning) from ``simple_baselines.json`` beside them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
RUNS = REPO / "runs" / "sparse_labels"
CONFIG = str(REPO / "configs" / "quickstart_3d.yaml")
IGNORE = 3
NAMES = {"background": 0, "grey matter": 1, "white matter": 2}


def sparse_planes(labels: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    """A mask of whole planes (any of the three axes, seeded) covering at least ``share``
    of the voxels."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(labels.shape, bool)
    while mask.mean() < share:
        axis = int(rng.integers(3))
        index = [slice(None)] * 3
        index[axis] = int(rng.integers(labels.shape[axis]))
        mask[tuple(index)] = True
    return mask


def make_dataset(share: float) -> Path:
    """``runs/sparse_labels/data_<share>``: the sample with the training labels sparse."""
    from scseg.data.samples import prepare_sample

    sample = prepare_sample("brain_tissue3d", quiet=True)
    root = RUNS / f"data_{share:g}"
    if (root / "dataset.json").is_file():
        return root
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for case in ("icbm_inferior", "icbm_superior"):
        image = sample / "imagesTr" / f"{case}.nii.gz"
        target = root / "imagesTr" / image.name
        if not target.exists():
            target.symlink_to(image)
        label = nib.load(sample / "labelsTr" / f"{case}.nii.gz")
        data = np.asarray(label.dataobj).astype(np.uint8)
        if case == "icbm_inferior" and share < 1.0:
            data[~sparse_planes(data, share)] = IGNORE
        nib.save(nib.Nifti1Image(data, label.affine, label.header), root / "labelsTr" / label
                 .get_filename().split("/")[-1])  # fmt: skip
    labels = dict(NAMES) | ({"ignore": IGNORE} if share < 1.0 else {})
    meta = {
        "name": f"brain_tissue3d_sparse_{share:g}",
        "channel_names": {"0": "T1"},
        "labels": labels,
        "training": [
            {"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"}
            for c in ("icbm_inferior", "icbm_superior")
        ],
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    (root / "split.json").write_text(
        json.dumps({"train": ["icbm_inferior"], "val": ["icbm_superior"]}) + "\n"
    )
    return root


def annotated(root: Path) -> tuple[int, int]:
    data = np.asarray(nib.load(root / "labelsTr" / "icbm_inferior.nii.gz").dataobj)
    return int((data != IGNORE).sum()), int(data.size)


def run_one(share: float, epochs: int, seed: int) -> dict:
    out = RUNS / f"share_{share:g}_seed{seed}"
    record = out / "run.json"
    if record.exists():
        return json.loads(record.read_text())
    root = make_dataset(share)
    args = [
        sys.executable, "-m", "scseg.cli", "fit", "--config", CONFIG,
        "--data.init_args.root", str(root),
        "--trainer.max_epochs", str(epochs),
        "--trainer.check_val_every_n_epoch", str(epochs),
        "--trainer.default_root_dir", str(out),
        "--trainer.enable_progress_bar", "false",
        "--seed_everything", str(seed),
    ]  # fmt: skip
    if share < 1.0:
        args += ["--model.ignore_index", str(IGNORE)]
    begin = time.perf_counter()
    subprocess.run(args, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    seconds = time.perf_counter() - begin
    rows = list(csv.DictReader((out / "logs" / "version_0" / "metrics.csv").open()))
    last = [r for r in rows if r.get("val/dice_mean")][-1]
    labelled, total = annotated(root)
    result = {
        "share": share,
        "seed": seed,
        "annotated_voxels": labelled,
        "voxels": total,
        "steps": int(last["step"]),
        "seconds": seconds,
        "dice_mean": float(last["val/dice_mean"]),
        "grey": float(last["val/dice/grey matter"]),
        "white": float(last["val/dice/white matter"]),
    }
    record.write_text(json.dumps(result, indent=2) + "\n")
    return result


def report() -> None:
    results = sorted(
        (json.loads(p.read_text()) for p in RUNS.glob("share_*/run.json")),
        key=lambda r: (-r["share"], r["seed"]),
    )
    otsu = json.loads((RESULTS / "simple_baselines.json").read_text())
    brain = next(r for r in otsu["rows"] if r["task"].startswith("brain_tissue3d"))
    lines = [
        "<!-- generated by benchmarks/sparse_labels.py; do not edit -->",
        "",
        "Training on sparse labels: brain tissue (grey and white matter), the template's "
        "lower half trains with labels on random whole planes only, the upper half "
        "validates on its dense labels (2 mm, the 3D quickstart's scSE U-Net, equal steps).",
        "",
        "| annotated voxels (training case) | share | steps | val Dice grey | white | mean "
        "| minutes |",
        "|---|---|---|---|---|---|---|",
        f"| baseline: {brain['method']} (no learning, 1 mm) | | 0 | "
        f"{brain['dice']['grey matter']:.3f} | {brain['dice']['white matter']:.3f} | "
        f"{np.mean(list(brain['dice'].values())):.3f} | 0 |",
    ]
    for r in results:
        kind = "dense" if r["share"] >= 1.0 else "sparse"
        lines.append(
            f"| {r['annotated_voxels']:,} of {r['voxels']:,} ({kind}) | "
            f"{100 * r['annotated_voxels'] / r['voxels']:.1f} % | {r['steps']} | "
            f"{r['grey']:.3f} | {r['white']:.3f} | {r['dice_mean']:.3f} | "
            f"{r['seconds'] / 60:.1f} |"
        )
    lines += ["", f"one seed per share; two CPU cores; {time.strftime('%Y-%m-%d')}", ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sparse_labels.md").write_text("\n".join(lines))
    with (RESULTS / "sparse_labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    print((RESULTS / "sparse_labels.md").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--shares", type=float, nargs="+", default=[1.0, 0.2, 0.05, 0.01])
    run.add_argument("--epochs", type=int, default=8)
    run.add_argument("--seeds", type=int, default=1)
    sub.add_parser("report")
    args = parser.parse_args()
    if args.command == "run":
        for seed in range(args.seeds):
            for share in args.shares:
                print(run_one(share, args.epochs, seed), flush=True)
    report()


if __name__ == "__main__":
    main()
