"""Writes test DICOM series from NIfTI-style arrays with SimpleITK's DICOM writer (GDCM).

The volume ``(X, Y, Z)`` with its RAS affine becomes one file per ``Z`` slice, with patient
position and orientation taken from the affine (DICOM's patient space is LPS), so series
can be made in any geometry: axial, LPS-ordered, oblique.
"""

from __future__ import annotations

import contextlib
import locale
from collections.abc import Iterator
from pathlib import Path

import numpy as np

_LPS = np.diag([-1.0, -1.0, 1.0])
_SOP_CLASSES = {"MR": "1.2.840.10008.5.1.4.1.1.4", "CT": "1.2.840.10008.5.1.4.1.1.2"}


@contextlib.contextmanager
def keep_locale() -> Iterator[None]:
    """GDCM sets the process locale to "C" (for its number formatting) and leaves it so;
    Python's default text encoding would then be ASCII for every later test."""
    saved = locale.setlocale(locale.LC_ALL, None)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _ds(values, precision: int = 8) -> str:
    """A DS (decimal string) value list: at most 16 characters per number."""
    return "\\".join(np.format_float_positional(float(v), precision=precision, trim="-")[:16]
                     for v in values)  # fmt: skip


def write_series(
    array: np.ndarray,
    affine: np.ndarray,
    folder: str | Path,
    *,
    series_uid: str | None = None,
    series_number: int = 1,
    modality: str = "MR",
    order: np.ndarray | None = None,
    prefix: str = "IM",
    cosine_decimals: int = 8,
) -> Path:
    """Writes ``array`` (int16-castable, ``(X, Y, Z)``) as a series of ``Z`` files.

    Args:
        order: file ``i`` holds slice ``order[i]`` (and its InstanceNumber is ``i + 1``),
            for series stored out of slice order.
        prefix: of the file names (``<prefix>0000.dcm``, ...).
        cosine_decimals: of the orientation cosines (many scanners and converters write 6).

    Returns:
        the folder.
    """
    import SimpleITK as sitk
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    linear = _LPS @ np.asarray(affine, float)[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    direction = linear / spacing
    origin = _LPS @ np.asarray(affine, float)[:3, 3]
    image = sitk.GetImageFromArray(np.asarray(array).astype(np.int16).transpose(2, 1, 0))
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(v) for v in direction.ravel()])
    image.SetOrigin([float(v) for v in origin])
    series_uid = series_uid or generate_uid()
    shared = {
        "0010|0010": "Test^Patient",
        "0010|0020": "scseg-test",
        "0020|000d": generate_uid(),
        "0020|000e": series_uid,
        "0020|0052": generate_uid(),
        "0020|0011": str(series_number),
        "0008|0060": modality,
        "0008|0016": _SOP_CLASSES[modality],
        "0020|0037": _ds([*direction[:, 0], *direction[:, 1]], cosine_decimals),
        "0018|0050": _ds([spacing[2]]),
        "0028|0030": _ds([spacing[1], spacing[0]]),  # row spacing (along Y), column spacing
    }
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    order = np.arange(array.shape[2]) if order is None else np.asarray(order)
    with keep_locale():
        _write_slices(image, order, shared, writer, folder, prefix)
    return folder


def _write_slices(image, order, shared: dict, writer, folder: Path, prefix: str) -> None:
    from pydicom.uid import generate_uid

    for i, k in enumerate(order):
        slice_ = image[:, :, int(k)]
        for tag, value in shared.items():
            slice_.SetMetaData(tag, value)
        slice_.SetMetaData("0008|0018", generate_uid())
        slice_.SetMetaData("0020|0013", str(i + 1))
        slice_.SetMetaData("0020|0032", _ds(image.TransformIndexToPhysicalPoint((0, 0, int(k)))))
        writer.SetFileName(str(folder / f"{prefix}{i:04d}.dcm"))
        writer.Execute(slice_)


def rotation(degrees: float, axis: int) -> np.ndarray:
    """A 4x4 rotation about a world axis."""
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    i, j = [a for a in range(3) if a != axis]
    out = np.eye(4)
    out[i, i], out[i, j], out[j, i], out[j, j] = c, -s, s, c
    return out
