"""Conversions into the layouts the data modules read.

* 2D folders: ``images/<case>.<ext>``, ``masks/<case>.png`` (class indices), ``split.json``.
* 3D: the Medical Segmentation Decathlon layout, ``imagesTr/``, ``labelsTr/``,
  ``dataset.json``, plus ``split.json``.

``split.json`` is ``{"train": [case, ...], "val": [case, ...]}``; the two never overlap.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scseg.io.nrrd import nrrd_affine

if TYPE_CHECKING:
    import nibabel as nib


def nrrd_to_nifti(src: str | Path, dest: str | Path, dtype: type | None = None) -> nib.Nifti1Image:
    """Converts an NRRD volume to NIfTI, keeping its geometry (affine in RAS)."""
    import nibabel as nib
    import nrrd

    data, header = nrrd.read(str(src))  # index order 'F': data[i, j, k] as in the header
    try:
        affine = nrrd_affine(header)
    except ValueError as err:
        raise ValueError(f"{src}: {err}") from None
    image = nib.Nifti1Image(data.astype(dtype) if dtype else data, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, str(dest))
    return image


def write_split(root: str | Path, train: Sequence[str], val: Sequence[str]) -> Path:
    """Writes ``split.json``; training and validation cases must not overlap."""
    overlap = sorted(set(train) & set(val))
    if overlap:
        raise ValueError(f"cases in both train and val: {overlap}")
    path = Path(root) / "split.json"
    path.write_text(json.dumps({"train": list(train), "val": list(val)}, indent=2) + "\n")
    return path


def seeded_split(
    cases: Sequence[str], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[str], list[str]]:
    """A reproducible train/val split: sorted cases, shuffled with ``seed``."""
    if not cases:
        raise ValueError("no cases to split")
    order = sorted(cases)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * val_fraction)) if len(order) > 1 else 0
    return sorted(order[n_val:]), sorted(order[:n_val])


def write_msd_dataset_json(
    root: str | Path,
    name: str,
    modalities: Sequence[str],
    labels: Mapping[int, str],
    cases: Sequence[str],
    description: str = "",
) -> Path:
    """Writes an MSD-style ``dataset.json`` for ``imagesTr/<case>.nii.gz`` files."""
    meta = {
        "name": name,
        "description": description,
        "tensorImageSize": "4D" if len(modalities) > 1 else "3D",
        "modality": {str(i): m for i, m in enumerate(modalities)},
        "labels": {str(k): v for k, v in labels.items()},
        "numTraining": len(cases),
        "numTest": 0,
        "training": [
            {"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in cases
        ],
        "test": [],
    }
    path = Path(root) / "dataset.json"
    path.write_text(json.dumps(meta, indent=2) + "\n")
    return path


def tile_2d(
    image: np.ndarray, mask: np.ndarray, tile: int
) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """Cuts an image and its mask into non-overlapping ``tile x tile`` pieces.

    Returns:
        ``(row, col, image_tile, mask_tile)`` for every whole tile, row-major.
    """
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(f"image {image.shape} and mask {mask.shape} differ in size")
    rows, cols = image.shape[0] // tile, image.shape[1] // tile
    return [
        (
            r,
            c,
            image[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile],
            mask[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile],
        )
        for r in range(rows)
        for c in range(cols)
    ]
