"""Segmentation losses over integer label maps, with an optional ignore index.

Cross-entropy and focal terms come from PyTorch and MONAI; the Dice term is MONAI's masked
soft Dice, formed here from class counts instead of a one-hot target (the same value,
several times faster with many classes). This module routes the ignore mask to each and
weights deep-supervision outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss, FocalLoss
from torch import nn

from scseg.layers.grid import downsample_labels

LOSSES = ("dice", "ce", "dicece", "focal")
SMOOTH = 1e-5  # MONAI DiceLoss's smooth_nr and smooth_dr


class SegmentationLoss(nn.Module):
    """Dice, cross-entropy, Dice + cross-entropy or focal loss on logits.

    Args:
        name: ``"dice"``, ``"ce"``, ``"dicece"`` (the sum) or ``"focal"``.
        include_background: whether the Dice term includes class 0.
        ignore_index: label value that contributes nothing (e.g. 255 in Pascal VOC).
        focal_gamma: focusing parameter of the focal loss.

    Shapes:
        forward: logits ``(B, C, *spatial)``, target ``(B, *spatial)`` or
        ``(B, 1, *spatial)`` of class indices -> scalar.
    """

    def __init__(
        self,
        name: str = "dicece",
        include_background: bool = False,
        ignore_index: int | None = None,
        focal_gamma: float = 2.0,
    ) -> None:
        super().__init__()
        if name not in LOSSES:
            raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
        self.name = name
        self.ignore_index = ignore_index
        self.include_background = include_background
        self.focal = FocalLoss(gamma=focal_gamma, use_softmax=True, reduction="none")

    def _prepare(self, target: torch.Tensor, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Class indices with ignored voxels set to 0, and the mask of the others."""
        if target.ndim == ndim:
            target = target[:, 0]
        target = target.long()
        if self.ignore_index is None:
            return target, torch.ones_like(target, dtype=torch.bool)
        valid = target != self.ignore_index
        return torch.where(valid, target, 0), valid

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        clean, valid = self._prepare(target, logits.ndim)
        loss = logits.new_zeros(())
        if self.name in ("ce", "dicece", "dice"):
            log_probs = torch.log_softmax(logits, 1)
        if self.name in ("ce", "dicece"):
            # the mean over annotated voxels; a patch with none gives 0, not 0 / 0
            ce = F.nll_loss(log_probs, clean, reduction="none")
            loss = loss + (ce * valid).sum() / valid.sum().clamp_min(1)
        if self.name in ("dice", "dicece"):
            loss = loss + self._dice_from_terms(*_dice_terms(log_probs.exp(), clean, valid))
        if self.name == "focal":
            onehot = F.one_hot(clean, logits.shape[1]).movedim(-1, 1).to(logits.dtype)
            per_voxel = self.focal(logits, onehot).sum(1)  # (B, *spatial)
            loss = (per_voxel * valid).sum() / valid.sum().clamp_min(1)
        return loss

    def sums(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The loss's additive statistics over some of the voxels (float64, per case).

        Adding these over disjoint parts of the same cases (``torch.cat`` over cases) and
        passing the total to :meth:`from_sums` gives :meth:`forward` on the whole, so a
        volume's loss needs one slab of logits at a time, not all of them.

        Returns:
            ``valid`` ``(B,)`` and, as the loss uses them, ``ce``/``focal`` ``(B,)`` (summed
            per-voxel terms) and ``intersection``/``predicted``/``truth`` ``(B, C)``
            (softmax-weighted Dice terms, as MONAI's masked Dice forms them).
        """
        clean, valid = self._prepare(target, logits.ndim)
        logits = logits.float()
        spatial = tuple(range(1, valid.ndim))
        # float32 sums over the part, float64 across parts (callers pass parts of a few
        # million voxels, so no float64 copy of the part is made)
        out = {"valid": valid.sum(spatial).double()}
        if self.name in ("ce", "dicece"):
            ce = F.cross_entropy(logits, clean, reduction="none")
            out["ce"] = (ce * valid).sum(spatial).double()
        if self.name in ("dice", "dicece"):
            terms = _dice_terms(torch.softmax(logits, 1), clean, valid)
            out.update(zip(("intersection", "predicted", "truth"),
                           (t.double() for t in terms), strict=True))  # fmt: skip
        if self.name == "focal":
            onehot = F.one_hot(clean, logits.shape[1]).movedim(-1, 1).to(logits.dtype)
            out["focal"] = (self.focal(logits, onehot).sum(1) * valid).sum(spatial).double()
        return out

    def _dice_from_terms(self, tp: torch.Tensor, predicted: torch.Tensor, truth: torch.Tensor):
        """MONAI's masked Dice loss from its terms, ``(B, C)`` each, class 0 left out
        unless ``include_background``."""
        first = 0 if self.include_background else 1
        return soft_dice_loss(tp[:, first:], predicted[:, first:], truth[:, first:])

    def from_sums(self, sums: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss from :meth:`sums` totalled over every voxel of the cases."""
        valid = sums["valid"].sum()
        loss = valid.new_zeros(())
        if "ce" in sums:
            loss = loss + sums["ce"].sum() / valid.clamp_min(1)
        if "intersection" in sums:
            loss = loss + self._dice_from_terms(
                sums["intersection"], sums["predicted"], sums["truth"]
            )
        if "focal" in sums:
            loss = loss + sums["focal"].sum() / valid.clamp_min(1)
        return loss.float()


def soft_dice_loss(tp: torch.Tensor, predicted: torch.Tensor, truth: torch.Tensor):
    """MONAI's ``DiceLoss`` (``batch=False``, mean reduction) from its terms, ``(B, C)``
    each: ``1 - (2 tp + s) / (predicted + truth + s)`` per case and class, then the mean."""
    dice = (2 * tp + SMOOTH) / (predicted + truth + SMOOTH)
    return (1 - dice).mean()


def _dice_terms(probs: torch.Tensor, clean: torch.Tensor, valid: torch.Tensor):
    """``(intersection, predicted, truth)``, each ``(B, C)``: the soft Dice terms of class
    probabilities ``(B, C, *spatial)`` against class indices ``(B, *spatial)`` over the
    ``valid`` voxels, as MONAI's masked Dice forms them from a one-hot target, but with no
    one-hot: the truth is a count per class and the intersection the probability of each
    voxel's own class, summed per class (with 137 classes, several times faster)."""
    batch, classes = probs.shape[:2]
    index = clean.reshape(batch, -1)
    weight = valid.reshape(batch, -1).to(probs.dtype)
    own = probs.gather(1, clean.unsqueeze(1)).reshape(batch, -1) * weight
    zeros = probs.new_zeros(batch, classes)
    axes = tuple(range(2, probs.ndim))
    predicted = (probs * valid.unsqueeze(1).to(probs.dtype)).sum(axes)
    return zeros.scatter_add(1, index, own), predicted, zeros.scatter_add(1, index, weight)


class RegionLoss(nn.Module):
    """Per-region sigmoid Dice, binary cross-entropy, or their sum, on logits: each output
    channel is one region, and regions may overlap (nnU-Net's region-based training).

    Args:
        name: ``"dicece"`` (Dice + BCE), ``"dice"`` or ``"ce"`` (BCE).

    Shapes:
        forward: logits ``(B, R, *spatial)``, target ``(B, R, *spatial)`` of 0/1 -> scalar.
    """

    def __init__(self, name: str = "dicece") -> None:
        super().__init__()
        if name not in ("dice", "ce", "dicece"):
            raise ValueError(f"loss {name!r} has no region form; choose dicece, dice or ce")
        self.name = name
        self.dice = DiceLoss(sigmoid=True, include_background=True)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.to(logits.dtype)
        loss = logits.new_zeros(())
        if self.name in ("ce", "dicece"):
            loss = loss + F.binary_cross_entropy_with_logits(logits, target)
        if self.name in ("dice", "dicece"):
            loss = loss + self.dice(logits, target)
        return loss

    def sums(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """As :meth:`SegmentationLoss.sums`: ``valid`` (voxels per case), ``bce`` ``(B,)``
        (the per-voxel mean over regions, summed over voxels) and the sigmoid Dice terms
        ``(B, R)``."""
        logits, target = logits.float(), target.float()
        axes = tuple(range(2, logits.ndim))
        out = {"valid": logits.new_full((logits.shape[0],), logits[0, 0].numel()).double()}
        if self.name in ("ce", "dicece"):
            bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
            out["bce"] = bce.mean(1).sum(tuple(range(1, bce.ndim - 1))).double()
        if self.name in ("dice", "dicece"):
            probs = torch.sigmoid(logits)
            out["intersection"] = (probs * target).sum(axes).double()
            out["predicted"] = probs.sum(axes).double()
            out["truth"] = target.sum(axes).double()
        return out

    def from_sums(self, sums: dict[str, torch.Tensor]) -> torch.Tensor:
        loss = sums["valid"].new_zeros(())
        if "bce" in sums:
            loss = loss + sums["bce"].sum() / sums["valid"].sum()
        if "intersection" in sums:
            loss = loss + soft_dice_loss(sums["intersection"], sums["predicted"], sums["truth"])
        return loss.float()


def deep_supervision_weights(n_outputs: int) -> list[float]:
    """nnU-Net's weighting: 1, 1/2, 1/4, ... normalised to sum to 1 (main output first)."""
    weights = [0.5**i for i in range(n_outputs)]
    total = sum(weights)
    return [w / total for w in weights]


def supervised_loss(
    loss: nn.Module, outputs: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor
) -> torch.Tensor:
    """Applies ``loss`` to one output or, with deep supervision, to each, weighted; an
    output coarser than the target (``deep_supervision_at="own"``) is scored against the
    labels at its resolution (:func:`scseg.layers.grid.downsample_labels`)."""
    if isinstance(outputs, torch.Tensor):
        return loss(outputs, target)
    weights = deep_supervision_weights(len(outputs))
    return sum(
        w * loss(o, downsample_labels(target, o.shape[2:]))
        for w, o in zip(weights, outputs, strict=True)
    )
