"""One native-space subject of the parcellation sample, side by side: the image, its true
labels, the training atlas copied by world position, the atlas after affine registration
and after affine + demons registration, and a network's prediction (``scseg predict``'s
label map), each with its mean Dice.

    uv run python benchmarks/parcellation_figure.py PREDICTIONS_DIR [--case native_00] \
        [--name "register then refine"]

Writes benchmarks/results/parcellation_native_figure.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from common import RESULTS

from scseg.atlas.registration import affine, deformable, labels_on
from scseg.data.samples import prepare_sample
from scseg.evaluation import mean_dice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", type=Path, help="folder of <case>.nii.gz label maps")
    parser.add_argument("--case", default="native_00")
    parser.add_argument("--name", default="register then refine")
    parser.add_argument("--native", type=int, default=8)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = prepare_sample("brain_parcellation3d", native=args.native)
    fixed = sitk.ReadImage(str(folder / "imagesTr" / f"{args.case}.nii.gz"), sitk.sitkFloat32)
    train = sitk.ReadImage(str(folder / "imagesTr" / "fsl_mni152.nii.gz"), sitk.sitkFloat32)
    train_labels = sitk.ReadImage(str(folder / "labelsTr" / "fsl_mni152.nii.gz"))
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labelsTr" / f"{args.case}.nii.gz")))
    found = affine(fixed, train)
    panels = {
        "image": sitk.GetArrayFromImage(fixed),
        "truth": truth,
        "atlas copy": labels_on(fixed, train_labels, sitk.Transform(3, sitk.sitkIdentity)),
        "affine registration": labels_on(fixed, train_labels, found),
        "affine + demons": labels_on(fixed, train_labels, deformable(fixed, train, found)),
        args.name: sitk.GetArrayFromImage(
            sitk.ReadImage(str(args.predictions / f"{args.case}.nii.gz"))
        ),
    }
    rng = np.random.default_rng(3)
    colours = rng.uniform(0.15, 1.0, (int(truth.max()) + 1, 3))
    colours[0] = 0.0
    fig, axes = plt.subplots(2, len(panels), figsize=(3.0 * len(panels), 6.2))
    centre = [n // 2 for n in truth.shape]  # (z, y, x): an axial and a coronal section
    for column, (title, data) in enumerate(panels.items()):
        for row, section in enumerate((data[centre[0]], data[:, centre[1]])):
            ax = axes[row, column]
            if title == "image":
                ax.imshow(section, cmap="gray", origin="lower")
            else:
                ax.imshow(colours[section.astype(int)], origin="lower", interpolation="nearest")
            ax.set_axis_off()
        label = title if title in ("image", "truth") else (
            f"{title}\nmean Dice {mean_dice(truth, data):.3f}")  # fmt: skip
        axes[0, column].set_title(label, fontsize=10)
    fig.suptitle(f"{args.case}: the validation template moved out of MNI space "
                 "(axial and coronal sections)", fontsize=11)  # fmt: skip
    fig.tight_layout()
    out = RESULTS / "parcellation_native_figure.png"
    fig.savefig(out, dpi=90)
    print(out)


if __name__ == "__main__":
    main()
