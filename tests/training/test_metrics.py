"""Dice/IoU against hand-computed values and against MONAI's DiceMetric and MeanIoU."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from monai.metrics import DiceMetric, MeanIoU

from scseg.training.metrics import SegmentationMetrics, case_scores, confusion_counts


def test_hand_computed_case() -> None:
    # 1 x 6 image; class 1: pred {0,1,2}, target {1,2,3} -> tp 2, fp 1, fn 1.
    pred = torch.tensor([[1, 1, 1, 0, 2, 0]])
    target = torch.tensor([[0, 1, 1, 1, 2, 2]])
    tp, fp, fn = confusion_counts(pred, target, classes=3)
    assert tp.tolist() == [[0, 2, 1]] and fp.tolist() == [[2, 1, 0]] and fn.tolist() == [[1, 1, 1]]
    metric = SegmentationMetrics(3, ["bg", "a", "b"])
    metric.update(pred, target)
    out = metric.compute()
    assert out["dice/a"].item() == pytest.approx(4 / 6)  # 2*2 / (2*2 + 1 + 1)
    assert out["iou/a"].item() == pytest.approx(2 / 4)
    assert out["dice/b"].item() == pytest.approx(2 / 3)  # 2*1 / (2 + 0 + 1)
    assert out["iou/b"].item() == pytest.approx(1 / 2)
    assert "dice/bg" not in out  # background excluded by default
    assert out["dice_mean"].item() == pytest.approx((4 / 6 + 2 / 3) / 2)


def test_empty_class_conventions() -> None:
    # Case 0: class 1 absent from both; case 1: absent from target, predicted (false alarm).
    pred = torch.tensor([[0, 0], [1, 0]])
    target = torch.tensor([[0, 0], [0, 0]])
    tp, fp, fn = confusion_counts(pred, target, 2)
    dice, _ = case_scores(tp, fp, fn, ignore_empty=True)
    assert math.isnan(dice[0, 1]) and math.isnan(dice[1, 1])
    dice, iou = case_scores(tp, fp, fn, ignore_empty=False)
    assert dice[:, 1].tolist() == [1.0, 0.0] and iou[:, 1].tolist() == [1.0, 0.0]
    metric = SegmentationMetrics(2, ignore_empty=True)
    metric.update(pred, target)
    assert math.isnan(metric.compute()["dice/class_1"].item())  # no case counts


def test_ignore_index_counts_for_nothing() -> None:
    pred = torch.tensor([[1, 1, 0, 1]])
    target = torch.tensor([[1, 255, 0, 255]])
    tp, fp, fn = confusion_counts(pred, target, 2, ignore_index=255)
    assert tp.tolist() == [[1, 1]] and fp.tolist() == [[0, 0]] and fn.tolist() == [[0, 0]]


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_matches_monai_on_random_masks(spatial_dims: int) -> None:
    g = torch.Generator().manual_seed(0)
    classes, batches = 4, 3
    metric = SegmentationMetrics(classes)
    dice_ref = DiceMetric(include_background=False, reduction="mean_batch", ignore_empty=True)
    iou_ref = MeanIoU(include_background=False, reduction="mean_batch", ignore_empty=True)
    shape = (5, *[12] * spatial_dims)
    for _ in range(batches):
        target = torch.randint(0, classes, shape, generator=g)
        # Drop class 3 from some cases so that the empty-class handling is exercised.
        target[:2][target[:2] == 3] = 0
        noise = torch.randint(0, classes, shape, generator=g)
        pred = torch.where(torch.rand(shape, generator=g) < 0.7, target, noise)
        metric.update(pred, target)

        def onehot(t: torch.Tensor) -> torch.Tensor:
            return F.one_hot(t, classes).movedim(-1, 1).float()

        dice_ref(onehot(pred), onehot(target))
        iou_ref(onehot(pred), onehot(target))
    out = metric.compute()
    ref_dice, ref_iou = dice_ref.aggregate(), iou_ref.aggregate()
    for i in range(1, classes):
        assert out[f"dice/class_{i}"].item() == pytest.approx(ref_dice[i - 1].item(), abs=1e-6)
        assert out[f"iou/class_{i}"].item() == pytest.approx(ref_iou[i - 1].item(), abs=1e-6)
    assert out["dice_mean"].item() == pytest.approx(ref_dice.mean().item(), abs=1e-6)


def test_states_are_sums_so_splits_merge_exactly() -> None:
    # What DDP does: each process accumulates a share, then the states are summed.
    g = torch.Generator().manual_seed(1)
    pred = torch.randint(0, 3, (6, 16, 16), generator=g)
    target = torch.randint(0, 3, (6, 16, 16), generator=g)
    whole, a, b = SegmentationMetrics(3), SegmentationMetrics(3), SegmentationMetrics(3)
    whole.update(pred, target)
    a.update(pred[:2], target[:2])
    b.update(pred[2:], target[2:])
    merged = SegmentationMetrics(3)
    merged.merge_state(a)
    merged.merge_state(b)
    for key, value in whole.compute().items():
        torch.testing.assert_close(merged.compute()[key], value)


def test_global_scores_skip_a_class_absent_all_epoch() -> None:
    """A perfect prediction of a 3-class task where class 2 never occurs scores 1, not 0.5."""
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    target[:, 2:5, 2:5] = 1
    metric = SegmentationMetrics(classes=3)
    metric.update(target.clone(), target)
    out = metric.compute()
    assert out["global_dice_mean"] == 1.0 and out["global_iou_mean"] == 1.0
    assert out["dice_mean"] == 1.0
    # once class 2 is predicted anywhere, it counts (and scores 0)
    wrong = target.clone()
    wrong[0, 7, 7] = 2
    metric.update(wrong, target)
    assert metric.compute()["global_dice_mean"] < 0.6


def _one_hot_counts(pred, target, classes, ignore_index=None):
    """The earlier (B x classes x voxels) formulation, kept as the reference."""
    b = pred.shape[0]
    pred, target = pred.reshape(b, -1).long(), target.reshape(b, -1).long()
    valid = target != ignore_index if ignore_index is not None else torch.ones_like(target).bool()
    ids = torch.arange(classes).view(1, classes, 1)
    p = (pred.unsqueeze(1) == ids) & valid.unsqueeze(1)
    t = (target.unsqueeze(1) == ids) & valid.unsqueeze(1)
    return (p & t).sum(-1), (p & ~t).sum(-1), (~p & t).sum(-1)


@pytest.mark.parametrize("classes", [2, 21, 137])
@pytest.mark.parametrize("ignore_index", [None, 255])
def test_bincount_counts_equal_the_one_hot_reference(classes: int, ignore_index) -> None:
    g = torch.Generator().manual_seed(classes)
    shape = (3, 9, 10, 7)
    target = torch.randint(0, classes, shape, generator=g)
    pred = torch.where(torch.rand(shape, generator=g) < 0.6, target,
                       torch.randint(0, classes, shape, generator=g))  # fmt: skip
    target[0, 0] = 255  # ignored, or (without ignore_index) an unknown value: a miss
    target[1, 1, 1] = -1
    pred[2, 2, 2] = classes + 3  # a prediction outside the classes counts for no class
    got = confusion_counts(pred, target, classes, ignore_index)
    expected = _one_hot_counts(pred, target, classes, ignore_index)
    for a, b in zip(got, expected, strict=True):
        assert a.shape == (3, classes)
        assert torch.equal(a, b)
