"""Per-class Dice and IoU over label maps, accumulated over an epoch and across processes.

Conventions follow MONAI's ``DiceMetric``/``MeanIoU`` (and so the Decathlon evaluation):
scores are computed per case (image or volume) and class, then averaged over cases. With
``ignore_empty=True`` a case whose ground truth lacks a class does not count for that class;
with ``ignore_empty=False`` it scores 1 if the prediction also lacks it, else 0. The
background class is left out of the means unless ``include_background``. Voxels labelled
``ignore_index`` count for nothing. Dataset-level ("global") scores from the summed
confusion counts, the Pascal VOC convention, are reported too.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric


def confusion_counts(
    pred: torch.Tensor, target: torch.Tensor, classes: int, ignore_index: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-case, per-class true positives, false positives and false negatives.

    Args:
        pred, target: class indices ``(B, *spatial)`` (or ``(B, 1, *spatial)``).

    Returns:
        ``tp, fp, fn``, each ``(B, classes)``.
    """
    if pred.ndim == target.ndim and pred.shape[1] == 1 and pred.ndim > 2:
        pred, target = pred[:, 0], target[:, 0]
    if target.ndim == pred.ndim + 1:
        target = target[:, 0]
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    b = pred.shape[0]
    # One (classes+1)^2 confusion matrix per case from a single bincount over
    # case * (C+1)^2 + target * (C+1) + pred: memory grows with voxels, not classes x voxels.
    # Row/column C collects values outside 0..C-1 (they count as misses, never as hits).
    n = classes + 1
    pred, target = pred.reshape(b, -1), target.reshape(b, -1)
    keep = target != ignore_index if ignore_index is not None else None
    t = torch.where((target >= 0) & (target < classes), target, classes).long()
    p = torch.where((pred >= 0) & (pred < classes), pred, classes).long()
    index = t.mul_(n).add_(p)
    index += torch.arange(b, device=index.device).view(b, 1) * (n * n)
    if keep is not None:
        index = index[keep]
    matrix = torch.bincount(index.flatten(), minlength=b * n * n).view(b, n, n)
    tp = matrix.diagonal(dim1=1, dim2=2)[:, :classes]
    fp = matrix.sum(1)[:, :classes] - tp  # predicted c, truth anything else
    fn = matrix.sum(2)[:, :classes] - tp  # truth c, predicted anything else
    return tp, fp, fn


def region_counts(
    pred: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`confusion_counts` of overlapping regions: ``pred`` and ``target`` binary
    ``(B, R, *spatial)``, each channel one region; returns ``tp, fp, fn`` ``(B, R)``."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    p, t = pred.bool().flatten(2), target.bool().flatten(2)
    tp = (p & t).sum(2)
    return tp, p.sum(2) - tp, t.sum(2) - tp


def case_scores(
    tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, ignore_empty: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dice and IoU per case and class; NaN where the case does not count (see module doc)."""
    tp, fp, fn = tp.double(), fp.double(), fn.double()
    denom_dice = 2 * tp + fp + fn
    denom_iou = tp + fp + fn
    empty_gt = (tp + fn) == 0
    dice = torch.where(denom_dice > 0, 2 * tp / denom_dice.clamp_min(1), 1.0)
    iou = torch.where(denom_iou > 0, tp / denom_iou.clamp_min(1), 1.0)
    if ignore_empty:
        nan = torch.full_like(dice, float("nan"))
        dice, iou = torch.where(empty_gt, nan, dice), torch.where(empty_gt, nan, iou)
    return dice, iou


class SegmentationMetrics(Metric):
    """Epoch-level per-class Dice and IoU; states are sums, so DDP reduces them exactly.

    Args:
        classes: number of classes (including background).
        class_names: names for the report (default ``class_<i>``).
        include_background: include class 0 in the means.
        ignore_empty: see the module docstring.
        ignore_index: label value to ignore.
        multilabel: predictions and targets are binary masks ``(B, R, *spatial)``, one
            per (possibly overlapping) region; every region is scored (no background).
    """

    full_state_update = False

    def __init__(
        self,
        classes: int,
        class_names: Sequence[str] | None = None,
        include_background: bool = False,
        ignore_empty: bool = True,
        ignore_index: int | None = None,
        multilabel: bool = False,
    ) -> None:
        super().__init__()
        if class_names is not None and len(class_names) != classes:
            raise ValueError(f"{len(class_names)} class names for {classes} classes")
        self.classes = classes
        self.class_names = list(class_names or [f"class_{i}" for i in range(classes)])
        self.include_background = include_background or multilabel
        self.multilabel = multilabel
        self.ignore_empty = ignore_empty
        self.ignore_index = ignore_index
        self.last_table: list[dict] = []
        for name in ("dice_sum", "iou_sum", "cases", "tp", "fp", "fn"):
            dtype = torch.float64 if name.endswith("sum") else torch.long
            self.add_state(name, torch.zeros(classes, dtype=dtype), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if self.multilabel:
            tp, fp, fn = region_counts(pred, target)
        else:
            tp, fp, fn = confusion_counts(pred, target, self.classes, self.ignore_index)
        dice, iou = case_scores(tp, fp, fn, self.ignore_empty)
        counted = ~torch.isnan(dice)
        self.dice_sum += torch.nan_to_num(dice).sum(0)
        self.iou_sum += torch.nan_to_num(iou).sum(0)
        self.cases += counted.sum(0)
        self.tp += tp.sum(0)
        self.fp += fp.sum(0)
        self.fn += fn.sum(0)

    def compute(self) -> dict[str, torch.Tensor]:
        """``dice/<name>``, ``iou/<name>``, their means, and ``global_*`` variants.

        Also sets :attr:`last_table`: one row per scored class with ``class``, ``index``,
        ``dice``, ``iou`` (case means), ``global_dice`` and ``voxels`` (in the ground truth).
        """
        cases = self.cases.double()
        dice = torch.where(cases > 0, self.dice_sum / cases.clamp_min(1), float("nan"))
        iou = torch.where(cases > 0, self.iou_sum / cases.clamp_min(1), float("nan"))
        tp, fp, fn = self.tp.double(), self.fp.double(), self.fn.double()
        # A class absent from truth and prediction all epoch has no score (NaN, left out of
        # the mean), as in the VOC evaluation; 0 would punish a perfect prediction.
        seen = (tp + fp + fn) > 0
        global_dice = torch.where(seen, 2 * tp / (2 * tp + fp + fn).clamp_min(1), float("nan"))
        global_iou = torch.where(seen, tp / (tp + fp + fn).clamp_min(1), float("nan"))
        first = 0 if self.include_background else 1
        out: dict[str, torch.Tensor] = {}
        for i in range(first, self.classes):
            out[f"dice/{self.class_names[i]}"] = dice[i]
            out[f"iou/{self.class_names[i]}"] = iou[i]
        out["dice_mean"] = torch.nanmean(dice[first:])
        out["iou_mean"] = torch.nanmean(iou[first:])
        out["global_dice_mean"] = torch.nanmean(global_dice[first:])
        out["global_iou_mean"] = torch.nanmean(global_iou[first:])
        # The per-class table for reports, taken here where DDP states are synced.
        voxels = (self.tp + self.fn).tolist()
        self.last_table = [
            {"class": self.class_names[i], "index": i, "dice": float(dice[i]),
             "iou": float(iou[i]), "global_dice": float(global_dice[i]), "voxels": voxels[i]}
            for i in range(first, self.classes)
        ]  # fmt: skip
        return {k: v.float() for k, v in out.items()}
