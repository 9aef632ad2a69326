"""Segmentation losses over integer label maps, with an optional ignore index.

Dice, cross-entropy and focal terms come from MONAI and PyTorch; this module only routes
the ignore mask to each and weights deep-supervision outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.losses import FocalLoss, MaskedDiceLoss
from torch import nn

LOSSES = ("dice", "ce", "dicece", "focal")


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
        self.dice = MaskedDiceLoss(include_background=include_background, softmax=True)
        self.focal = FocalLoss(gamma=focal_gamma, use_softmax=True, reduction="none")

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim == logits.ndim:
            target = target[:, 0]
        target = target.long()
        valid = (
            torch.ones_like(target, dtype=torch.bool)
            if self.ignore_index is None
            else target != self.ignore_index
        )
        clean = torch.where(valid, target, 0)
        loss = logits.new_zeros(())
        if self.name in ("ce", "dicece"):
            ignore = -100 if self.ignore_index is None else self.ignore_index
            loss = loss + F.cross_entropy(logits, target, ignore_index=ignore)
        if self.name in ("dice", "dicece"):
            onehot = F.one_hot(clean, logits.shape[1]).movedim(-1, 1).to(logits.dtype)
            loss = loss + self.dice(logits, onehot, mask=valid.unsqueeze(1).to(logits.dtype))
        if self.name == "focal":
            onehot = F.one_hot(clean, logits.shape[1]).movedim(-1, 1).to(logits.dtype)
            per_voxel = self.focal(logits, onehot).sum(1)  # (B, *spatial)
            loss = (per_voxel * valid).sum() / valid.sum().clamp_min(1)
        return loss


def deep_supervision_weights(n_outputs: int) -> list[float]:
    """nnU-Net's weighting: 1, 1/2, 1/4, ... normalised to sum to 1 (main output first)."""
    weights = [0.5**i for i in range(n_outputs)]
    total = sum(weights)
    return [w / total for w in weights]


def supervised_loss(
    loss: nn.Module, outputs: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor
) -> torch.Tensor:
    """Applies ``loss`` to one output or, with deep supervision, to each, weighted."""
    if isinstance(outputs, torch.Tensor):
        return loss(outputs, target)
    weights = deep_supervision_weights(len(outputs))
    return sum(w * loss(o, target) for w, o in zip(weights, outputs, strict=True))
