"""Per case and class scores: overlap (Dice, IoU) and surface distances in world units,
one class at a time; :func:`evaluate` over folders."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scseg.data.labels import LabelScheme
from scseg.evaluation.files import (
    EvaluationError,
    _is_volume,
    check_geometry,
    class_names_for,
    pair_files,
    read_label_map,
    read_regions,
)

METRICS = ("dice", "iou", "hd95", "msd", "nsd")
COLUMNS = ("case", "class", "name", *METRICS, "truth_voxels", "predicted_voxels")


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
        return _evaluate_regions(pairs, regions, tolerance, progress)
    names = list(class_names) if class_names else class_names_for(prediction, truth, pairs)
    if names is not None and len(names) < 2:
        raise EvaluationError(f"give a name for background and each class, got {names}")
    scores: dict[str, dict[int, dict]] = {}
    top, seen, holder = 0, set(), None
    for case, pred_path, truth_path in pairs:
        if progress is not None:
            progress(case)
        pred, true = _read_pair(pred_path, truth_path, ignore)
        for path, label_map in ((pred_path, pred), (truth_path, true)):
            highest = _highest(path, label_map, names)
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


def _evaluate_regions(pairs, regions: LabelScheme, tolerance: float, progress):
    """:func:`evaluate` for regions that may overlap."""
    names = ["background", *regions.names]
    scores = {}
    for case, pred_path, truth_path in pairs:
        if progress is not None:
            progress(case)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "monai.metrics.utils get_mask_edges")
            scores[case] = _score_regions(pred_path, truth_path, regions, tolerance)
    return _rows(pairs, scores, names), names, "mm"


def _read_pair(pred_path: Path, truth_path: Path, ignore: int | None):
    """Prediction and truth on one grid; where the truth is ``ignore`` both become 0
    (unscored there)."""
    pred, true = read_label_map(pred_path), read_label_map(truth_path)
    check_geometry(pred, true, pred_path, truth_path)
    if ignore is not None:
        annotated = true.labels != ignore
        true.labels = np.where(annotated, true.labels, 0)
        pred.labels = np.where(annotated, pred.labels, 0)
    return pred, true


def _highest(path: Path, label_map, names: Sequence[str] | None) -> int:
    """The highest label value of ``label_map``, which ``names`` (if given) must name."""
    highest = int(label_map.labels.max()) if label_map.labels.size else 0
    if names is not None and highest >= len(names):
        raise EvaluationError(
            f"{path}: label value {highest} is not among the {len(names)} classes "
            f"({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})"
        )
    return highest


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
