"""The parcellation baselines that need no learning, on the native-space subjects and on the
MNI-space validation template: what every network row must be read against.

* atlas copy: the training template's labels placed on the subject by world position;
* affine registration: the training template registered to the subject (SimpleITK,
  Mattes mutual information, rigid then 12 parameters, two resolutions), its labels warped
  (nearest);
* affine + deformable: then SimpleITK's fast symmetric-forces demons at 2 mm, its labels
  warped.

Each is scored as validation scores a network: mean Dice over the structures present in
the subject's labels, on its own 1 mm grid; the time of each registration on this
machine's cores. The subjects come from ``scseg data brain_parcellation3d --native N``.

    uv run python benchmarks/parcellation_baselines.py [--native 8] [--atlas neuromorphometrics] \
        [--network NAME PREDICTIONS_DIR SECONDS_PER_SUBJECT ...]

Results: benchmarks/results/parcellation_baselines.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from common import write

from scseg.data.samples import prepare_sample
from scseg.evaluation import mean_dice


def _labels_on(fixed: sitk.Image, labels: sitk.Image, transform: sitk.Transform) -> np.ndarray:
    warped = sitk.Resample(labels, fixed, transform, sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayFromImage(warped)


def _method() -> sitk.ImageRegistrationMethod:
    """Mattes mutual information on a regular 10 % sample (deterministic), at a quarter and
    a half of the resolution."""
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.REGULAR)
    method.SetMetricSamplingPercentage(0.1)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetShrinkFactorsPerLevel([4, 2])
    method.SetSmoothingSigmasPerLevel([2, 1])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return method


def _run(fixed: sitk.Image, moving: sitk.Image, start: sitk.Transform, rate: float,
         iterations: int) -> sitk.Transform:  # fmt: skip
    method = _method()
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=rate, minStep=1e-4,
                                                    numberOfIterations=iterations,
                                                    relaxationFactor=0.5)  # fmt: skip
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetInitialTransform(start, inPlace=False)
    found = method.Execute(fixed, moving)
    return found.GetNthTransform(0) if isinstance(found, sitk.CompositeTransform) else found


def affine(fixed: sitk.Image, moving: sitk.Image) -> sitk.Transform:
    """Rigid (centres of mass aligned first), then the 12-parameter affine from it: a
    direct affine search from the moments stopped in poorer optima here (Dice 0.52-0.68
    against 0.73 on the first native subjects)."""
    moments = sitk.CenteredTransformInitializerFilter.MOMENTS
    start = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(), moments)
    rigid = sitk.Euler3DTransform(_run(fixed, moving, start, 2.0, 200))
    full = sitk.AffineTransform(3)
    full.SetCenter(rigid.GetCenter())
    full.SetMatrix(rigid.GetMatrix())
    full.SetTranslation(rigid.GetTranslation())
    return sitk.AffineTransform(_run(fixed, moving, full, 1.0, 300))


def _at_2mm(image: sitk.Image) -> sitk.Image:
    size = [round(n * p / 2.0) for n, p in zip(image.GetSize(), image.GetSpacing(), strict=True)]
    return sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(),
                         (2.0, 2.0, 2.0), image.GetDirection(), 0.0, sitk.sitkFloat32)  # fmt: skip


def deformable(fixed: sitk.Image, moving: sitk.Image, initial: sitk.Transform) -> sitk.Transform:
    """After the affine, SimpleITK's fast symmetric-forces demons at 2 mm (50 iterations,
    the field smoothed with sigma 1.5 voxels), the moving template's intensities matched to
    the subject's histogram first. A B-spline transform (a control point every 40 mm, 50
    L-BFGS-B iterations) scored less (0.744 against 0.768 on native_00) in 77 s against
    11 s."""
    target = _at_2mm(fixed)
    moved = sitk.Resample(moving, target, initial, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    moved = sitk.HistogramMatching(moved, target, 256, 7, True)
    demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
    demons.SetNumberOfIterations(50)
    demons.SetStandardDeviations(1.5)
    field = demons.Execute(target, moved)
    shift = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
    return sitk.CompositeTransform([initial, shift])  # the field first, then the affine


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--native", type=int, default=8, help="native-space subjects")
    parser.add_argument("--atlas", default="neuromorphometrics")
    parser.add_argument(
        "--network", nargs=3, action="append", default=[], metavar=("NAME", "DIR", "SECONDS"),
        help="also score a network's predictions of every case in DIR (scseg predict's "
        "output), with its prediction time per subject",
    )  # fmt: skip
    args = parser.parse_args()
    folder = prepare_sample("brain_parcellation3d", atlas=args.atlas, native=args.native)
    train_image = sitk.ReadImage(str(folder / "imagesTr" / "fsl_mni152.nii.gz"), sitk.sitkFloat32)
    train_labels = sitk.ReadImage(str(folder / "labelsTr" / "fsl_mni152.nii.gz"))
    cases = ["icbm2009c_asym"] + [f"native_{k:02d}" for k in range(args.native)]
    rows = [r for case in cases for r in score_subject(folder, case, train_image, train_labels)]
    for name, predictions, seconds in args.network:
        rows += score_network(folder, cases, name, Path(predictions), float(seconds))
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
