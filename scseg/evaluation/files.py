"""The label maps that ``scseg evaluate`` compares: read, paired by case, checked for the
same grid, and their class names (a prediction's ``.tsv``, else ``dataset.json``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scseg.data.labels import LabelScheme, label_scheme
from scseg.io.label_tables import read_label_table
from scseg.io.volumes import VOLUME_SUFFIXES, case_name


class EvaluationError(ValueError):
    """Inputs that cannot be scored; the message names the files."""


@dataclass
class LabelMap:
    labels: np.ndarray  # integer class indices
    spacing: tuple[float, ...]  # along each array axis, mm (volumes) or px (images)
    affine: np.ndarray | None  # volumes only


def _is_volume(path: Path) -> bool:
    return path.name.lower().endswith(VOLUME_SUFFIXES)


def _is_mask(path: Path) -> bool:
    return path.suffix.lower() == ".png"


def _read_volume(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(array, affine)`` of a NIfTI/NRRD file, a trailing axis of one dropped.

    Raises:
        EvaluationError: unreadable.
    """
    from scseg.io.volumes import read_volume

    try:
        data, affine = read_volume(path)
        data = np.asarray(data)
    except Exception as err:  # nibabel and pynrrd raise many types for bad files
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise EvaluationError(f"{path}: cannot read volume ({first})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    return data, affine


def read_label_map(path: Path) -> LabelMap:
    """A NIfTI/NRRD volume or a PNG mask of class indices.

    Raises:
        EvaluationError: unreadable, not 2D/3D, or not whole numbers.
    """
    if _is_volume(path):
        data, affine = _read_volume(path)
        if data.ndim != 3:
            raise EvaluationError(f"{path}: a label map must be 3D, got shape {data.shape}")
        spacing = tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(0)))
    else:
        from scseg.io.images import read_mask

        try:
            data, affine, spacing = read_mask(path), None, (1.0, 1.0)
        except ValueError as err:
            raise EvaluationError(str(err)) from None
    if np.issubdtype(data.dtype, np.floating) and (
        not np.all(np.isfinite(data)) or np.any(data != np.round(data))
    ):
        raise EvaluationError(f"{path}: not a label map (values that are not whole numbers)")
    if data.size and data.min() < 0:
        raise EvaluationError(f"{path}: negative label value {int(data.min())}")
    return LabelMap(data.astype(np.int64, copy=False), spacing, affine)


def pair_files(
    prediction: Path, truth: Path, cases: set[str] | None = None
) -> list[tuple[str, Path, Path]]:
    """``(case, prediction file, truth file)`` for every truth file (of ``cases``, if
    given), matched by case name.

    Raises:
        EvaluationError: a folder is missing or empty, or a truth case has no prediction.
    """
    for folder, what in ((prediction, "--prediction"), (truth, "--truth")):
        if not folder.is_dir():
            raise EvaluationError(f"{folder}: {what} folder not found")
    truths = sorted(p for p in truth.iterdir() if p.is_file() and (_is_volume(p) or _is_mask(p)))
    if cases is not None:
        if unknown := sorted(cases - {case_name(p) for p in truths}):
            raise EvaluationError(f"{truth}: no truth for case(s) {', '.join(unknown[:5])}")
        truths = [p for p in truths if case_name(p) in cases]
    if not truths:
        raise EvaluationError(f"{truth}: holds no label maps (NIfTI/NRRD volumes or PNG masks)")
    if {_is_volume(p) for p in truths} == {True, False}:
        raise EvaluationError(f"{truth}: holds both volumes and PNG masks; keep one kind")
    wanted = _is_volume if _is_volume(truths[0]) else _is_mask
    predicted = {case_name(p): p for p in prediction.iterdir() if p.is_file() and wanted(p)}
    pairs, missing = [], []
    for path in truths:
        case = case_name(path)
        if case in predicted:
            pairs.append((case, predicted[case], path))
        else:
            missing.append(case)
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise EvaluationError(
            f"{prediction}: no prediction for {len(missing)} of {len(truths)} truth case(s) "
            f"in {truth}: {shown}"
        )
    return pairs


def check_geometry(pred: LabelMap, truth: LabelMap, pred_path: Path, truth_path: Path) -> None:
    """Raises :class:`EvaluationError` naming both files if their grids differ: scores are
    never taken after a silent resampling."""
    if pred.labels.shape != truth.labels.shape:
        raise EvaluationError(
            f"{pred_path} {pred.labels.shape} and {truth_path} {truth.labels.shape}: "
            "shapes differ (a prediction must be on its truth's grid)"
        )
    if pred.affine is not None and not np.allclose(pred.affine, truth.affine, atol=1e-3):
        worst = float(np.abs(pred.affine - truth.affine).max())
        raise EvaluationError(
            f"{pred_path} and {truth_path}: affines differ (by up to {worst:.3g} mm; "
            "a prediction must be on its truth's grid)"
        )


def class_names_for(prediction: Path, truth: Path, pairs: Sequence[tuple[str, Path, Path]]):
    """The class names a prediction run wrote (``<case>.tsv`` beside the label maps), else
    ``dataset.json``'s ``labels`` beside or above the truth folder, else ``None``."""
    for case, _, _ in pairs:
        table = prediction / f"{case}.tsv"
        if table.is_file():
            try:
                return read_label_table(table)
            except ValueError as err:
                raise EvaluationError(str(err)) from None
    for meta in (truth / "dataset.json", truth.parent / "dataset.json"):
        if meta.is_file():
            data = json.loads(meta.read_text())
            labels = data.get("labels") or {}
            with contextlib.suppress(ValueError):
                scheme = label_scheme(data, str(meta))
                if scheme is not None and not scheme.multilabel:
                    return list(scheme.names)
            try:
                return [str(labels[str(i)]) for i in range(len(labels))]
            except KeyError:
                return None
    return None


def dataset_labels(truth: Path) -> LabelScheme | None:
    """The label scheme (ignore value, regions) of ``dataset.json`` beside or above the
    truth folder, if it has one (:mod:`scseg.data.labels`)."""
    for meta in (truth / "dataset.json", truth.parent / "dataset.json"):
        if meta.is_file():
            try:
                return label_scheme(json.loads(meta.read_text()), str(meta))
            except ValueError as err:
                raise EvaluationError(str(err)) from None
    return None


def read_regions(path: Path, scheme: LabelScheme) -> tuple[np.ndarray, LabelMap]:
    """Region masks ``(R, *spatial)`` of a file holding one mask per region (4D) or a
    label map (each region the union of its values); and the file's geometry.

    Raises:
        EvaluationError: unreadable, or neither R masks nor a label map.
    """
    data, affine = _read_volume(path)
    if data.ndim == 4 and data.shape[3] == scheme.channels:
        masks = np.moveaxis(data > 0, 3, 0)
    elif data.ndim == 3 and scheme.regions is not None:
        masks = np.stack([np.isin(data, members) for members in scheme.regions])
    else:
        raise EvaluationError(
            f"{path}: shape {data.shape} is neither {scheme.channels} region masks (4D) nor "
            "a label map of the regions' values"
        )
    spacing = tuple(float(v) for v in np.sqrt((affine[:3, :3] ** 2).sum(0)))
    return masks, LabelMap(masks[0].astype(np.int64), spacing, affine)
