from __future__ import annotations

import pytest
import torch

from scseg.training.losses import SegmentationLoss, deep_supervision_weights, supervised_loss


def _logits_for(target: torch.Tensor, classes: int, scale: float = 20.0) -> torch.Tensor:
    return torch.nn.functional.one_hot(target, classes).movedim(-1, 1).float() * scale


@pytest.mark.parametrize("name", ["dice", "ce", "dicece", "focal"])
def test_perfect_prediction_scores_near_zero_and_wrong_scores_high(name: str) -> None:
    target = torch.randint(0, 3, (2, 8, 8, 8))
    loss = SegmentationLoss(name)
    good = loss(_logits_for(target, 3), target)
    bad = loss(_logits_for((target + 1) % 3, 3), target)
    assert good.item() < 0.01
    assert bad.item() > 0.5


@pytest.mark.parametrize("name", ["dice", "ce", "dicece", "focal"])
def test_ignored_pixels_do_not_change_the_loss(name: str) -> None:
    torch.manual_seed(0)
    target = torch.randint(0, 2, (2, 1, 16, 16))
    target[:, :, :4] = 255
    logits = torch.randn(2, 2, 16, 16)
    loss = SegmentationLoss(name, ignore_index=255)
    before = loss(logits, target)
    logits2 = logits.clone()
    logits2[:, :, :4] = torch.randn(2, 2, 4, 16) * 10  # change only ignored pixels
    torch.testing.assert_close(loss(logits2, target), before)


def test_deep_supervision_weighting() -> None:
    assert deep_supervision_weights(3) == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    target = torch.randint(0, 2, (1, 8, 8))
    loss = SegmentationLoss("ce")
    outputs = [torch.randn(1, 2, 8, 8) for _ in range(3)]
    expected = sum(w * loss(o, target) for w, o in zip([4 / 7, 2 / 7, 1 / 7], outputs, strict=True))
    torch.testing.assert_close(supervised_loss(loss, outputs, target), expected)


def test_unknown_loss() -> None:
    with pytest.raises(ValueError, match="dice, ce, dicece, focal"):
        SegmentationLoss("lovasz")
