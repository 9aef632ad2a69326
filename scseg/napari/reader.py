"""Volumes into napari layers in world millimetres.

A layer's ``affine`` is the file's voxel-to-RAS matrix (scale, rotation and translation in
one), so a scan and its labels line up, and two scans of one patient line up, whatever
their grids. NIfTI and NRRD files are read by :func:`scseg.io.volumes.read_volume`, DICOM
series (a folder) by :func:`scseg.io.dicom.read_series`. A label map (a NIfTI file whose
intent is "label", as scseg writes them, or one with a ``.tsv`` of class names beside it)
becomes a Labels layer with its class names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scseg.io.dicom import SeriesError, find_series, read_series
from scseg.io.volumes import VOLUME_SUFFIXES, case_name, read_volume

LayerData = tuple[np.ndarray, dict, str]


class ReadError(ValueError):
    """A file or folder napari was given that is not a volume; the message names it."""


def get_reader(path: str | list[str]):
    """npe2 reader hook: a function for a NIfTI/NRRD file or a folder holding a DICOM
    series; ``None`` for anything else (napari then tries its other readers)."""
    if isinstance(path, list):
        return None if len(path) != 1 else get_reader(path[0])
    given = Path(path)
    if given.is_file() and given.name.lower().endswith(VOLUME_SUFFIXES):
        return _read_or_notify
    if given.is_dir() and find_series(given):
        return _read_or_notify
    return None


def _read_or_notify(path: str | list[str]) -> list:
    """:func:`read_layers` for napari: a file it cannot read is one line in the
    notifications and no layer (napari's ``[(None,)]``), not a traceback dialog."""
    try:
        return read_layers(path)
    except ReadError as err:
        from napari.utils.notifications import show_error

        show_error(str(err))
        return [(None,)]


def read_layers(path: str | list[str]) -> list[LayerData]:
    """The layers of a volume file or of each DICOM series in a folder.

    Raises:
        ReadError: naming the file and the problem.
    """
    path = Path(path[0] if isinstance(path, list) else path)
    if path.is_dir():
        layers = []
        for series in find_series(path):
            try:
                volume = read_series(series)
            except SeriesError as err:
                raise ReadError(str(err)) from None
            meta = {"source": str(series.folder), "dicom_series": series}
            layers.append(_layer(volume.array, volume.affine, series.name, meta))
        if not layers:
            raise ReadError(f"{path}: holds no DICOM series")
        return layers
    try:
        array, affine = read_volume(path)
    except Exception as err:  # nibabel and pynrrd raise many types for bad files
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ReadError(f"{path}: cannot read volume ({first})") from None
    return [_layer(np.asarray(array), affine, case_name(path), {"source": str(path)},
                   _class_names(path, array))]  # fmt: skip


def _layer(array: np.ndarray, affine: np.ndarray, name: str, meta: dict,
           names: list[str] | None = None) -> LayerData:  # fmt: skip
    if array.ndim not in (3, 4):
        raise ReadError(
            f"{meta['source']}: a volume has 3 axes (4 with channels), not {array.ndim}"
        )
    kwargs: dict = {"name": name, "affine": np.asarray(affine, float), "metadata": meta}
    if names is not None and array.ndim == 3:
        kwargs["features"] = {"class": list(names)}
        return array.astype(np.int32, copy=False), kwargs, "labels"
    if array.ndim == 4:
        kwargs["channel_axis"] = 3
        kwargs["name"] = [f"{name} [{c}]" for c in range(array.shape[3])]
    return array, kwargs, "image"


def _class_names(path: Path, array: np.ndarray) -> list[str] | None:
    """The class names of a label map: its ``.tsv`` (``index``, ``name``) beside it, else
    numbers where its NIfTI intent says "label"; ``None`` for an image."""
    table = path.with_name(f"{case_name(path)}.tsv")
    if table.is_file():
        from scseg.io.label_tables import read_label_table

        try:
            return read_label_table(table)
        except ValueError as err:
            raise ReadError(str(err)) from None
    if path.name.lower().endswith((".nii", ".nii.gz")):
        import nibabel as nib

        if nib.load(path).header.get_intent()[0] == "label":  # the header only
            top = int(np.asarray(array).max())
            return [str(i) for i in range(top + 1)]
    return None
