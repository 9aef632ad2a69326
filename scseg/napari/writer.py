"""A napari Labels layer to NIfTI (with a ``.tsv`` of class names) or, when it was
predicted on a DICOM series, to DICOM-SEG: on the grid of the scan it belongs to."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from scseg.io.volumes import case_name


class WriteError(ValueError):
    """A layer that cannot be written where asked; the message names the file."""


def world_affine(meta: dict) -> np.ndarray:
    """The layer's data-to-world matrix (its ``affine`` after scale, rotation, shear and
    translation), as napari composes them."""
    from napari.utils.transforms import Affine

    ndim = np.asarray(meta["affine"]).shape[0] - 1
    inner = Affine(
        scale=meta.get("scale", [1.0] * ndim),
        translate=meta.get("translate", [0.0] * ndim),
        rotate=meta.get("rotate"),
        shear=meta.get("shear"),
        ndim=ndim,
    )
    return np.asarray(meta["affine"], float) @ inner.affine_matrix


def write_labels(path: str, data: np.ndarray, meta: dict) -> list[str]:
    """npe2 writer hook for one Labels layer: ``.nii.gz``/``.nii`` (NIfTI, intent label,
    with ``<name>.tsv`` where the layer names its classes) or ``.dcm`` (DICOM-SEG, for
    labels on a DICOM series' grid).

    Raises:
        WriteError: a layer that is not a volume, or DICOM-SEG without a source series.
    """
    from scseg.inference.writing import atomic_write
    from scseg.io.label_tables import label_table

    out = Path(path)
    labels = np.asarray(data)
    if labels.ndim != 3:
        raise WriteError(f"{out}: a label volume has 3 axes, this layer has {labels.ndim}")
    names = _names(meta, int(labels.max(initial=0)))
    dtype = np.uint8 if labels.max(initial=0) <= 255 else np.int16
    if out.suffix.lower() == ".dcm":
        series = (meta.get("metadata") or {}).get("dicom_series")
        if series is None:
            raise WriteError(f"{out}: DICOM-SEG needs labels on a DICOM series; save as .nii.gz")
        from scseg.inference.dicom_seg import write_dicom_seg
        from scseg.io.dicom import read_series

        volume = read_series(series)
        atomic_write(out, lambda t: write_dicom_seg(t, labels.astype(dtype), volume, names), True)
        return [str(out)]
    if not out.name.lower().endswith((".nii.gz", ".nii")):
        out = out.with_name(out.name + ".nii.gz")
    affine = world_affine(meta)
    image = nib.Nifti1Image(labels.astype(dtype), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_intent("label")
    atomic_write(out, lambda t: nib.save(image, t), True)  # napari asked
    table = out.with_name(f"{case_name(out)}.tsv")
    atomic_write(table, lambda t: Path(t).write_text(label_table(names)), True)
    return [str(out), str(table)]


def _names(meta: dict, top: int) -> list[str]:
    features = meta.get("features")
    column = None
    if features is not None and "class" in features:
        column = [str(n) for n in list(features["class"])]
    names = column or ["background"]
    return names + [str(i) for i in range(len(names), top + 1)]
