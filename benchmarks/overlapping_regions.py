"""Overlapping regions in one network: hemispheres, the cerebral cortex, the frontal lobe
and four frontal gyri, from the Neuromorphometrics structures of the parcellation sample.

A voxel of the left superior frontal gyrus is in five regions at once (left hemisphere,
cortex, frontal lobe, superior frontal gyrus), which no single label map can say. The
regions are unions of structure values, given in ``dataset.json`` as nnU-Net v2's
region-based labels (``"frontal_lobe": [43, 44, ...]``); ``scseg plan`` reads them the same
way. The network (the 3D parcellation config's scSE U-Net, a sigmoid per region) trains on
the MNI152 template only and is scored by ``scseg predict --regions masks`` and ``scseg
evaluate`` on the native-space subjects (``scseg data brain_parcellation3d --native 8``:
the validation template moved by seeded rotations, scalings, shifts and elastic warps).
Beside it, per region, the two baselines that need no learning: the training template's
regions copied by world position, and warped by an affine registration (SimpleITK, as in
``parcellation_baselines.py``), with its time.

    uv run python benchmarks/overlapping_regions.py [--epochs 24] [--subjects 8]

Results: ``benchmarks/results/overlapping_regions.{md,csv}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
RUNS = REPO / "runs" / "overlapping_regions"
CONFIG = str(REPO / "configs" / "brain_parcellation_3d.yaml")
FRONTAL = ("AOrG", "FO", "FRP", "GRe", "LOrG", "MFC", "MFG", "MOrG", "MPrG", "MSFG", "OpIFG",
           "OrIFG", "POrG", "PrG", "SCA", "SFG", "SMC", "TrIFG")  # fmt: skip
GYRI = {
    "superior_frontal_gyrus": ("SFG", "MSFG"),
    "middle_frontal_gyrus": ("MFG",),
    "inferior_frontal_gyrus": ("OpIFG", "OrIFG", "TrIFG"),
    "precentral_gyrus": ("PrG", "MPrG"),
}


def regions(names: dict[int, str]) -> dict[str, list[int]]:
    """The regions as unions of structure values, from the structure names."""

    def code(name: str) -> str:  # "Right_SFG_superior_frontal_gyrus" -> "SFG"
        parts = name.split("_")
        return parts[1] if len(parts) > 2 and parts[0] in ("Left", "Right") else ""

    cerebellum = ("Cerebellum", "Cerebellar")
    left = [
        v for v, n in names.items() if n.startswith("Left_") and not any(c in n for c in cerebellum)
    ]
    right = [
        v
        for v, n in names.items()
        if n.startswith("Right_") and not any(c in n for c in cerebellum)
    ]
    cortex = [v for v in names if v >= 39]  # the cortical structures of the protocol
    out = {
        "left_hemisphere": left,
        "right_hemisphere": right,
        "cerebral_cortex": cortex,
        "frontal_lobe": [v for v in cortex if code(names[v]) in FRONTAL],
    }
    for gyrus, codes in GYRI.items():
        out[gyrus] = [v for v in cortex if code(names[v]) in codes]
    return {k: sorted(v) for k, v in out.items()}


def make_dataset(subjects: int) -> tuple[Path, dict[str, list[int]]]:
    from scseg.data.samples import prepare_sample

    # the sample with its native-space subjects (made once, a few minutes)
    source = prepare_sample("brain_parcellation3d", atlas="neuromorphometrics", native=subjects)
    meta = json.loads((source / "dataset.json").read_text())
    names = {int(k): v for k, v in meta["labels"].items() if int(k) > 0}
    found = regions(names)
    root = RUNS / "data"
    cases = ["fsl_mni152", *[f"native_{i:02d}" for i in range(subjects)]]
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for case in cases:
            link = root / folder / f"{case}.nii.gz"
            if not link.exists():
                link.symlink_to(source / folder / f"{case}.nii.gz")
    dataset = {
        "name": "brain_regions_overlapping",
        "channel_names": {"0": "T1"},
        "labels": {"background": 0, **found},
        "training": [
            {"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in cases
        ],
    }
    (root / "dataset.json").write_text(json.dumps(dataset, indent=1) + "\n")
    split = {"train": ["fsl_mni152"], "val": cases[1:2]}  # one subject at the run's end
    (root / "split.json").write_text(json.dumps(split) + "\n")
    return root, found


def scseg(*args: str) -> None:
    command = [sys.executable, "-m", "scseg.cli", *args]
    subprocess.run(command, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})


def train_and_predict(root: Path, channels: int, epochs: int, subjects: int) -> dict:
    where = RUNS / f"epochs_{epochs}"
    out = where / "run"
    record = where / "network.json"
    if record.exists():
        return json.loads(record.read_text())
    begin = time.perf_counter()
    scseg("fit", "--config", CONFIG, "--data.init_args.root", str(root),
          "--data.init_args.classes", str(channels), "--model.classes", str(channels),
          "--model.multilabel", "true",
          "--trainer.max_epochs", str(epochs), "--trainer.check_val_every_n_epoch", str(epochs),
          "--trainer.default_root_dir", str(out),
          "--trainer.enable_progress_bar", "false")  # fmt: skip
    trained = time.perf_counter() - begin
    checkpoint = sorted((out / "checkpoints").glob("last*.ckpt"))[-1]
    inputs = RUNS / "inputs"
    inputs.mkdir(exist_ok=True)
    for i in range(subjects):
        link = inputs / f"native_{i:02d}.nii.gz"
        if not link.exists():
            link.symlink_to((root / "imagesTr" / link.name).resolve())
    begin = time.perf_counter()
    scseg("predict", "--checkpoint", str(checkpoint), "--input", str(inputs), "--output",
          str(where / "predictions"), "--regions", "masks", "--quiet", "--overwrite")  # fmt: skip
    predicted = (time.perf_counter() - begin) / subjects
    result = {"train_seconds": trained, "predict_seconds_per_subject": predicted,
              "checkpoint": str(checkpoint), "epochs": epochs}  # fmt: skip
    record.write_text(json.dumps(result, indent=2) + "\n")
    return result


def network_scores(root: Path, epochs: int) -> dict[str, dict[str, float]]:
    """``scseg evaluate``'s per-region Dice of the network, per case."""
    where = RUNS / f"epochs_{epochs}"
    scores = where / "network_scores.csv"
    truth = RUNS / "truth"
    truth.mkdir(exist_ok=True)
    for p in (where / "predictions").glob("*.nii.gz"):
        link = truth / p.name
        if not link.exists():
            link.symlink_to((root / "labelsTr" / p.name).resolve())
    (truth / "dataset.json").write_text((root / "dataset.json").read_text())
    if not scores.exists():
        scseg("evaluate", "--prediction", str(where / "predictions"), "--truth", str(truth),
              "--out", str(scores))  # fmt: skip
    out: dict[str, dict[str, float]] = {}
    for row in csv.DictReader(scores.open()):
        out.setdefault(row["case"], {})[row["name"]] = float(row["dice"] or "nan")
    return out


def baseline_scores(root: Path, found: dict[str, list[int]], subjects: int):
    """Atlas copy and affine registration of the training template, per case and region."""
    import SimpleITK as sitk
    from parcellation_baselines import _labels_on, affine

    moving = sitk.ReadImage(str(root / "imagesTr" / "fsl_mni152.nii.gz"), sitk.sitkFloat32)
    atlas = sitk.ReadImage(str(root / "labelsTr" / "fsl_mni152.nii.gz"))
    rows = {"atlas copy": {}, "affine registration": {}}
    seconds = []
    for i in range(subjects):
        case = f"native_{i:02d}"
        fixed = sitk.ReadImage(str(root / "imagesTr" / f"{case}.nii.gz"), sitk.sitkFloat32)
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "labelsTr" / f"{case}.nii.gz")))
        copied = _labels_on(fixed, atlas, sitk.Transform(3, sitk.sitkIdentity))
        start = time.perf_counter()
        warped = _labels_on(fixed, atlas, affine(fixed, moving))
        seconds.append(time.perf_counter() - start)
        for method, guess in (("atlas copy", copied), ("affine registration", warped)):
            rows[method][case] = {
                name: _dice(np.isin(truth, values), np.isin(guess, values))
                for name, values in found.items()
            }
    return rows, statistics.mean(seconds)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else float("nan")


def report(found, networks: dict[int, tuple[dict, dict]], baselines, affine_seconds) -> None:
    """``networks``: per number of epochs, the run's record and its scores."""
    methods = dict(baselines)
    seconds = {"atlas copy": 0.0, "affine registration": affine_seconds}
    trained = []
    for epochs, (network, scores) in sorted(networks.items()):
        name = f"scSE U-Net, {epochs} epochs"
        methods[name] = scores
        seconds[name] = network["predict_seconds_per_subject"]
        trained.append(f"{epochs} epochs in {network['train_seconds'] / 60:.0f} minutes")
    cases = sorted(next(iter(networks.values()))[1])
    lines = [
        "<!-- generated by benchmarks/overlapping_regions.py; do not edit -->",
        "",
        f"Overlapping regions, one network: Dice per region on {len(cases)} native-space "
        "subjects (mean over subjects), trained on the MNI152 template only "
        f"({'; '.join(trained)} on two CPU cores, 3 steps per epoch), beside the baselines "
        "that need no learning. Seconds per subject: prediction, or registration.",
        "",
        "| region | structures | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    rows = []
    for region, values in found.items():
        means = [statistics.mean(m[c][region] for c in cases) for m in methods.values()]
        lines.append(
            f"| {region} | {len(values)} | " + " | ".join(f"{v:.3f}" for v in means) + " |"
        )
        for method, m in methods.items():
            for c in cases:
                rows.append({"region": region, "method": method, "case": c, "dice": m[c][region]})
    overall = [statistics.mean(m[c][r] for c in cases for r in found) for m in methods.values()]
    lines.append("| **mean** | | " + " | ".join(f"**{v:.3f}**" for v in overall) + " |")
    lines.append(
        "| seconds per subject | | " + " | ".join(f"{seconds[m]:.1f}" for m in methods) + " |"
    )
    lines += ["", f"one seed; two CPU cores; {time.strftime('%Y-%m-%d')}", ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "overlapping_regions.md").write_text("\n".join(lines))
    with (RESULTS / "overlapping_regions.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["region", "method", "case", "dice"])
        writer.writeheader()
        writer.writerows(rows)
    print((RESULTS / "overlapping_regions.md").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--subjects", type=int, default=8)
    args = parser.parse_args()
    root, found = make_dataset(args.subjects)
    train_and_predict(root, len(found), args.epochs, args.subjects)
    networks = {}
    for record in sorted(RUNS.glob("epochs_*/network.json")):
        epochs = int(record.parent.name.split("_")[1])
        networks[epochs] = (json.loads(record.read_text()), network_scores(root, epochs))
    cached = RUNS / "baselines.json"
    if not cached.exists():
        cached.write_text(json.dumps(baseline_scores(root, found, args.subjects)) + "\n")
    baselines, affine_seconds = json.loads(cached.read_text())
    report(found, networks, baselines, affine_seconds)


if __name__ == "__main__":
    main()
