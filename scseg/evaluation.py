"""Scores of predicted label maps against ground truth, per case and per class.

Overlap (Dice, IoU) and surface metrics (95th-percentile Hausdorff distance, mean surface
distance, normalised surface Dice at a tolerance), the latter in world units: millimetres
from the affine of NIfTI/NRRD volumes, pixels for 2D PNG masks. The distances come from
MONAI's metric functions, one class at a time (the memory of one class, not classes x
voxels).

Empty structures (Metrics Reloaded's recommendation, BraTS's worst-case distance):

* absent from truth and prediction: no score (NaN), left out of every mean;
* absent from one of them only: Dice, IoU and NSD 0, HD95 and MSD the largest distance the
  grid holds (its diagonal), so a missed or invented structure counts as the worst case.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scseg.data.labels import LabelScheme, label_scheme
from scseg.io.volumes import VOLUME_SUFFIXES, case_name

METRICS = ("dice", "iou", "hd95", "msd", "nsd")
COLUMNS = ("case", "class", "name", *METRICS, "truth_voxels", "predicted_voxels")


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


def class_dice(truth: np.ndarray, prediction: np.ndarray, classes: int = 0) -> np.ndarray:
    """Dice of every class (at least ``classes`` of them) from one bincount, NaN for a class
    absent from ``truth``: a class the prediction misses scores 0, one it adds where the
    truth has none is not scored."""
    t, p = truth.ravel().astype(np.int64), prediction.ravel().astype(np.int64)
    n = max(classes, int(max(t.max(initial=0), p.max(initial=0))) + 1)
    both = np.bincount(t[t == p], minlength=n)
    in_truth, in_prediction = np.bincount(t, minlength=n), np.bincount(p, minlength=n)
    present = np.flatnonzero(in_truth)
    dice = np.full(n, np.nan)
    dice[present] = 2 * both[present] / (in_truth[present] + in_prediction[present])
    return dice


def mean_dice(truth: np.ndarray, prediction: np.ndarray) -> float:
    """Mean :func:`class_dice` over the foreground classes present in ``truth`` (how the
    parcellation baselines and native-space scores are reported)."""
    dice = class_dice(truth, prediction)[1:]
    return float(np.mean(dice[~np.isnan(dice)]))


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


def score_class(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float], tolerance: float):
    """Dice, IoU, HD95, MSD and NSD of one binary structure; see the module's conventions."""
    import torch
    from monai.metrics import (
        compute_average_surface_distance,
        compute_hausdorff_distance,
        compute_surface_dice,
    )

    n_pred, n_truth = int(pred.sum()), int(truth.sum())
    counts = {"truth_voxels": n_truth, "predicted_voxels": n_pred}
    if n_pred == 0 and n_truth == 0:
        return {**dict.fromkeys(METRICS, math.nan), **counts}
    if n_pred == 0 or n_truth == 0:
        diagonal = float(np.linalg.norm(np.array(pred.shape) * np.array(spacing)))
        return {"dice": 0.0, "iou": 0.0, "hd95": diagonal, "msd": diagonal, "nsd": 0.0, **counts}
    overlap = int(np.logical_and(pred, truth).sum())
    # on the pair's bounding box (and a margin) as on the whole volume, but several times faster
    box = _joint_box(pred, truth, margin=2)
    y_pred = torch.from_numpy(np.ascontiguousarray(pred[box]))[None, None]
    y = torch.from_numpy(np.ascontiguousarray(truth[box]))[None, None]
    spacing = list(spacing)
    hd95 = compute_hausdorff_distance(y_pred, y, True, percentile=95, spacing=spacing)
    msd = compute_average_surface_distance(y_pred, y, True, symmetric=True, spacing=spacing)
    nsd = compute_surface_dice(y_pred, y, [tolerance], True, spacing=spacing, use_subvoxels=True)
    return {
        "dice": 2 * overlap / (n_pred + n_truth),
        "iou": overlap / (n_pred + n_truth - overlap),
        "hd95": float(hd95),
        "msd": float(msd),
        "nsd": float(nsd),
        **counts,
    }


def _joint_box(a: np.ndarray, b: np.ndarray, margin: int) -> tuple[slice, ...]:
    """The bounding box of ``a | b``, ``margin`` voxels larger on each side (clipped)."""
    hits = np.argwhere(a | b)
    low, high = np.maximum(hits.min(0) - margin, 0), hits.max(0) + 1 + margin
    return tuple(slice(lo, hi) for lo, hi in zip(low, high, strict=True))


def class_names_for(prediction: Path, truth: Path, pairs: Sequence[tuple[str, Path, Path]]):
    """The class names a prediction run wrote (``<case>.tsv`` beside the label maps), else
    ``dataset.json``'s ``labels`` beside or above the truth folder, else ``None``."""
    for case, _, _ in pairs:
        table = prediction / f"{case}.tsv"
        if table.is_file():
            rows = [line.split("\t") for line in table.read_text().splitlines()[1:] if line]
            return [name for _, name in sorted((int(i), n) for i, n in rows)]
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


def _score_regions(pred_path: Path, truth_path: Path, scheme: LabelScheme, tolerance: float):
    pred, pred_map = read_regions(pred_path, scheme)
    true, true_map = read_regions(truth_path, scheme)
    check_geometry(pred_map, true_map, pred_path, truth_path)
    return {
        r + 1: score_class(pred[r], true[r], true_map.spacing, tolerance)
        for r in range(scheme.channels)
        if pred[r].any() or true[r].any()
    }


def evaluate(
    prediction: str | Path,
    truth: str | Path,
    class_names: Sequence[str] | None = None,
    tolerance: float = 1.0,
    progress=None,
    cases: Sequence[str] | None = None,
    ignore: int | None = None,
    regions: LabelScheme | None = None,
) -> tuple[list[dict], list[str], str]:
    """Scores every truth case against the prediction of the same name.

    Args:
        prediction, truth: folders of label maps (``<case>.nii.gz`` etc., or PNGs).
        class_names: a name per label value, background (0) first; by default read from the
            prediction's ``.tsv`` label tables or ``dataset.json``, else the values.
        tolerance: NSD's tolerance, in mm (volumes) or pixels (PNG masks).
        progress: called with each case name as it is scored.
        cases: score only these (default: every truth file).
        ignore: a truth value that means "not annotated": those voxels are left out of
            every score (the prediction there counts for nothing).
        regions: score regions that may overlap (:class:`scseg.data.labels.LabelScheme`),
            each a "class" (numbered from 1 in the rows), from region masks (4D files)
            or label maps (each region the union of its values).

    Returns:
        ``(rows, class_names, unit)``: a row per case and foreground class
        (:data:`COLUMNS`), and the unit of the distances (``"mm"`` or ``"px"``).

    Raises:
        EvaluationError: for missing predictions, differing grids, unreadable files and
            label values beyond the named classes, naming the files.
    """
    prediction, truth = Path(prediction), Path(truth)
    if not tolerance > 0:
        raise EvaluationError(f"--tolerance must be positive, got {tolerance}")
    pairs = pair_files(prediction, truth, None if cases is None else set(cases))
    if regions is not None and regions.multilabel:
        names = ["background", *regions.names]
        scores = {}
        for case, pred_path, truth_path in pairs:
            if progress is not None:
                progress(case)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "monai.metrics.utils get_mask_edges")
                scores[case] = _score_regions(pred_path, truth_path, regions, tolerance)
        return _rows(pairs, scores, names), names, "mm"
    names = list(class_names) if class_names else class_names_for(prediction, truth, pairs)
    if names is not None and len(names) < 2:
        raise EvaluationError(f"give a name for background and each class, got {names}")
    scores: dict[str, dict[int, dict]] = {}
    top, seen, holder = 0, set(), None
    for case, pred_path, truth_path in pairs:
        if progress is not None:
            progress(case)
        pred, true = read_label_map(pred_path), read_label_map(truth_path)
        check_geometry(pred, true, pred_path, truth_path)
        if ignore is not None:
            annotated = true.labels != ignore
            true.labels = np.where(annotated, true.labels, 0)
            pred.labels = np.where(annotated, pred.labels, 0)  # unscored where unannotated
        for path, label_map in ((pred_path, pred), (truth_path, true)):
            highest = int(label_map.labels.max()) if label_map.labels.size else 0
            if names is not None and highest >= len(names):
                raise EvaluationError(
                    f"{path}: label value {highest} is not among the {len(names)} classes "
                    f"({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})"
                )
            if highest > top or holder is None:
                top, holder = highest, path
        present = np.union1d(np.unique(pred.labels), np.unique(true.labels))
        seen.update(int(v) for v in present)
        with warnings.catch_warnings():
            # MONAI's metrics call its own get_mask_edges with an argument it deprecated
            warnings.filterwarnings("ignore", "monai.metrics.utils get_mask_edges:always_return")
            scores[case] = {
                int(c): score_class(pred.labels == c, true.labels == c, true.spacing, tolerance)
                for c in present
                if c > 0
            }
    if names is None and (gaps := sorted(set(range(top + 1)) - seen)):
        raise EvaluationError(
            f"{holder}: label value {top} with {len(gaps)} unused value(s) below it "
            f"({_span(gaps)}): label maps hold class indices 0..N-1 (a 0/255 mask? save it "
            "as 0/1), or name every value with --classes"
        )
    if names is None and top == 0:
        raise EvaluationError(
            f"{truth}: every truth and prediction of the {len(pairs)} case(s) is background "
            "only: no class to score (name the classes with --classes to list them)"
        )
    names = names or ["background", *[str(i) for i in range(1, top + 1)]]
    return _rows(pairs, scores, names), names, "mm" if _is_volume(pairs[0][2]) else "px"


def _span(values: Sequence[int]) -> str:
    """``1..254`` for a run, else the first few values."""
    if values[-1] - values[0] + 1 == len(values) and len(values) > 2:
        return f"{values[0]}..{values[-1]}"
    return ", ".join(map(str, values[:5])) + (", ..." if len(values) > 5 else "")


def _rows(pairs, scores: dict[str, dict[int, dict]], names: list[str]) -> list[dict]:
    rows = []
    for case, _, _ in pairs:
        for c in range(1, len(names)):
            empty = {**dict.fromkeys(METRICS, math.nan), "truth_voxels": 0, "predicted_voxels": 0}
            rows.append({"case": case, "class": c, "name": names[c], **scores[case].get(c, empty)})
    return rows


def write_csv(rows: Sequence[dict], path: Path, overwrite: bool = False) -> Path:
    """The rows as CSV, written atomically (the file appears complete or not at all)."""
    from scseg.inference.writing import atomic_write

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _fmt(row[k]) for k in COLUMNS})

    return atomic_write(path, write, overwrite)


def _fmt(value):
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def summarise(rows: Sequence[dict]) -> list[dict]:
    """Per class: cases scored, mean and median of each metric, and the worst case (lowest
    Dice). NaN scores (structure absent from truth and prediction) are left out."""
    by_class: dict[int, list[dict]] = {}
    for row in rows:
        by_class.setdefault(row["class"], []).append(row)
    summary = []
    for c, class_rows in by_class.items():
        scored = [r for r in class_rows if not math.isnan(r["dice"])]
        entry = {"class": c, "name": class_rows[0]["name"], "cases": len(scored)}
        for metric in METRICS:
            values = [r[metric] for r in scored]
            entry[metric] = statistics.fmean(values) if values else math.nan
            entry[f"{metric}_median"] = statistics.median(values) if values else math.nan
        worst = min(scored, key=lambda r: r["dice"], default=None)
        entry["worst"] = (worst["case"], worst["dice"]) if worst else None
        summary.append(entry)
    return summary


def summary_table(summary: Sequence[dict], unit: str, tolerance: float, rows: int = 24):
    """A rich table: per class the cases scored, mean and median Dice, mean IoU, HD95, MSD
    and NSD, and the worst case; with more than ``rows`` classes, the ten with the lowest
    mean Dice. The last row is the mean over classes."""
    from rich.table import Table

    scored = [s for s in summary if s["cases"]]
    shown = scored if len(scored) <= rows else sorted(scored, key=lambda s: s["dice"])[:10]
    what = "per class" if shown is scored else f"of the 10 lowest of {len(scored)} classes"
    table = Table(title=f"mean scores {what} (HD95, MSD in {unit}; NSD at {tolerance:g} {unit})")
    for name in ("class", "n", "Dice", "median", "IoU", "HD95", "MSD", "NSD", "worst (Dice)"):
        left = name in ("class", "worst (Dice)")
        table.add_column(name, justify="left" if left else "right", no_wrap=True)

    def number(value: float, digits: int = 4) -> str:
        return "" if math.isnan(value) else f"{value:.{digits}f}"

    for s in shown:
        worst = f"{s['worst'][0]} ({s['worst'][1]:.3f})" if s["worst"] else ""
        table.add_row(s["name"], str(s["cases"]), number(s["dice"]), number(s["dice_median"]),
                      number(s["iou"]), number(s["hd95"], 2), number(s["msd"], 2),
                      number(s["nsd"]), worst)  # fmt: skip
    if scored:

        def mean(metric: str) -> float:
            return statistics.fmean(s[metric] for s in scored)

        table.add_row("mean", "", number(mean("dice")), "", number(mean("iou")),
                      number(mean("hd95"), 2), number(mean("msd"), 2), number(mean("nsd")), "",
                      style="bold")  # fmt: skip
    return table
