"""The parcellation baselines that need no learning, on the native-space subjects and on the
MNI-space validation template: what every network row must be read against.

* atlas copy: the training template's labels placed on the subject by world position;
* affine registration: the training template registered to the subject (SimpleITK,
  Mattes mutual information, rigid then 12 parameters, two resolutions;
  :mod:`scseg.atlas.registration`, the same that a label-prior model starts from), its
  labels warped (nearest);
* affine + deformable: then SimpleITK's fast symmetric-forces demons at 2 mm, its labels
  warped.

Each is scored as validation scores a network: mean Dice over the structures present in
the subject's labels, on its own 1 mm grid; the time of each registration on this
machine's cores. The subjects come from ``scseg data brain_parcellation3d --native N``.

    uv run python benchmarks/parcellation_baselines.py [--native 8] [--atlas neuromorphometrics] \
        [--network NAME PREDICTIONS_DIR SECONDS_PER_SUBJECT ...] \
        [--checkpoint NAME CHECKPOINT OUTPUT_DIR ...]

Results: benchmarks/results/parcellation_baselines.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import SimpleITK as sitk
from common import write

from scseg.atlas.registration import affine, deformable
from scseg.atlas.registration import labels_on as _labels_on
from scseg.data.samples import prepare_sample
from scseg.evaluation import mean_dice


def score_subject(
    folder, case: str, train_image: sitk.Image, train_labels: sitk.Image
) -> list[dict]:
    fixed = sitk.ReadImage(str(folder / "imagesTr" / f"{case}.nii.gz"), sitk.sitkFloat32)
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labelsTr" / f"{case}.nii.gz")))
    rows = [
        {
            "case": case,
            "method": "atlas copy",
            "dice": mean_dice(
                truth, _labels_on(fixed, train_labels, sitk.Transform(3, sitk.sitkIdentity))
            ),
            "seconds": 0.0,
        }
    ]
    start = time.perf_counter()
    found = affine(fixed, train_image)
    affine_s = time.perf_counter() - start
    rows.append(
        {
            "case": case,
            "method": "affine registration",
            "dice": mean_dice(truth, _labels_on(fixed, train_labels, found)),
            "seconds": affine_s,
        }
    )
    start = time.perf_counter()
    warped = deformable(fixed, train_image, found)
    rows.append({"case": case, "method": "affine + deformable registration (demons)",
                 "dice": mean_dice(truth, _labels_on(fixed, train_labels, warped)),
                 "seconds": affine_s + time.perf_counter() - start})  # fmt: skip
    for row in rows:
        print(f"{case:16s} {row['method']:32s} Dice {row['dice']:.3f} {row['seconds']:6.1f} s")
    return rows


def score_network(folder, cases: list[str], name: str, predictions, seconds: float) -> list[dict]:
    """A network's label maps (``scseg predict``'s, ``<case>.nii.gz``), scored as above."""
    rows = []
    for case in cases:
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labelsTr" / f"{case}.nii.gz")))
        guess = sitk.GetArrayFromImage(sitk.ReadImage(str(predictions / f"{case}.nii.gz")))
        rows.append({"case": case, "method": name, "dice": mean_dice(truth, guess),
                     "seconds": seconds})  # fmt: skip
        print(f"{case:16s} {name:32s} Dice {rows[-1]['dice']:.3f}")
    return rows


def predict_cases(folder, cases: list[str], checkpoint: Path, out: Path) -> list[float]:
    """``scseg predict`` of each case, one process per case as a user runs it (model loading,
    registration for a label-prior model, windows, writing); its seconds per case."""
    out.mkdir(parents=True, exist_ok=True)
    seconds = []
    for case in cases:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "scseg.cli", "predict", "--checkpoint",
                        str(checkpoint), "--input", str(folder / "imagesTr" / f"{case}.nii.gz"),
                        "--output", str(out), "--overwrite", "--quiet"], check=True)  # fmt: skip
        seconds.append(time.perf_counter() - start)
        print(f"{case:16s} predicted in {seconds[-1]:.1f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--native", type=int, default=8, help="native-space subjects")
    parser.add_argument("--atlas", default="neuromorphometrics")
    parser.add_argument(
        "--network", nargs=3, action="append", default=[], metavar=("NAME", "DIR", "SECONDS"),
        help="also score a network's predictions of every case in DIR (scseg predict's "
        "output), with its prediction time per subject",
    )  # fmt: skip
    parser.add_argument(
        "--checkpoint", nargs=3, action="append", default=[], metavar=("NAME", "CKPT", "OUT"),
        help="predict every case with this checkpoint (scseg predict, timed per case) into "
        "OUT, then score it",
    )  # fmt: skip
    parser.add_argument("--keep-networks", action="store_true",
                        help="keep the network rows of the last results (dated)")  # fmt: skip
    args = parser.parse_args()
    folder = prepare_sample("brain_parcellation3d", atlas=args.atlas, native=args.native)
    train_image = sitk.ReadImage(str(folder / "imagesTr" / "fsl_mni152.nii.gz"), sitk.sitkFloat32)
    train_labels = sitk.ReadImage(str(folder / "labelsTr" / "fsl_mni152.nii.gz"))
    cases = ["icbm2009c_asym"] + [f"native_{k:02d}" for k in range(args.native)]
    rows = [r for case in cases for r in score_subject(folder, case, train_image, train_labels)]
    for name, predictions, seconds in args.network:
        rows += score_network(folder, cases, name, Path(predictions), float(seconds))
    for name, checkpoint, out in args.checkpoint:
        seconds = predict_cases(folder, cases, Path(checkpoint), Path(out))
        scored = score_network(folder, cases, name, Path(out), 0.0)
        for row, took in zip(scored, seconds, strict=True):
            row["seconds"] = took
        rows += scored
    if args.keep_networks:  # network rows of the last results, not measured again here
        import json

        from common import RESULTS

        earlier = json.loads((RESULTS / "parcellation_baselines.json").read_text())
        done = {r["method"] for r in rows}
        for row in earlier["rows"]:
            if row["method"].startswith(("network", "no network")) and row["method"] not in done:
                rows.append({**row, "method": f"{row['method']} [{earlier['meta']['date']}]"}
                            if "[" not in row["method"] else row)  # fmt: skip
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = ["| method | MNI-space template: Dice | native subjects: mean Dice ± sd (min) | "
             "seconds per subject (native: median) |", "|---|---|---|---|"]  # fmt: skip
    for method in methods:
        mni = next(r for r in rows if r["method"] == method and r["case"] == "icbm2009c_asym")
        native = [r for r in rows if r["method"] == method and r["case"] != "icbm2009c_asym"]
        dice = [r["dice"] for r in native]
        lines.append(f"| {method} | {mni['dice']:.3f} | {statistics.mean(dice):.3f} ± "
                     f"{statistics.pstdev(dice):.3f} ({min(dice):.3f}) | "
                     f"{statistics.median(r['seconds'] for r in native):.1f} |")  # fmt: skip
    table = "\n".join(lines)
    print(table)
    meta = {"atlas": args.atlas, "native_subjects": args.native, "train": "fsl_mni152",
            "threads": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}  # fmt: skip
    for path in write("parcellation_baselines", rows, table, meta):
        print(path)


if __name__ == "__main__":
    main()
