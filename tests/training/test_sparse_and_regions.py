"""Loss and metrics on sparse labels (only annotated voxels count) and on regions that
overlap (a sigmoid per region)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from scseg.training.losses import RegionLoss, SegmentationLoss
from scseg.training.metrics import SegmentationMetrics, confusion_counts, region_counts

IGNORE = 3


def _sparse_case(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 6, 5, 4, generator=g)
    target = torch.randint(0, 3, (2, 6, 5, 4), generator=g)
    annotated = torch.rand(2, 6, 5, 4, generator=g) < 0.3
    return logits, torch.where(annotated, target, IGNORE), target, annotated


@pytest.mark.parametrize("name", ["ce", "dice", "dicece", "focal"])
def test_loss_on_sparse_labels_is_the_dense_loss_of_the_annotated_voxels(name) -> None:
    """The annotated voxels of each case, laid out as a 1D 'image' with no ignore value,
    give the same loss."""
    logits, sparse, _, annotated = _sparse_case()
    loss = SegmentationLoss(name, ignore_index=IGNORE)(logits, sparse)
    # per case the annotated voxels only; cases of unequal length are padded with voxels
    # whose logits and target make zero contribution: so compare case by case instead
    per_case = []
    for b in range(2):
        keep = annotated[b]
        lg = logits[b].permute(1, 2, 3, 0)[keep].T[None]  # (1, C, N)
        per_case.append((lg, sparse[b][keep][None]))
    if name in ("ce", "focal"):  # means over all annotated voxels of the batch
        lg = torch.cat([p[0] for p in per_case], 2)
        tg = torch.cat([p[1] for p in per_case], 1)
        dense = SegmentationLoss(name)(lg, tg)
    else:  # Dice: per case and class, then the mean (the CE part is over all voxels)
        dense_dice = torch.stack([SegmentationLoss("dice")(lg, tg) for lg, tg in per_case]).mean()
        dense = dense_dice
        if name == "dicece":
            lg = torch.cat([p[0] for p in per_case], 2)
            tg = torch.cat([p[1] for p in per_case], 1)
            dense = dense + SegmentationLoss("ce")(lg, tg)
    assert torch.allclose(loss, dense, atol=1e-6), (loss, dense)


def test_cross_entropy_by_hand() -> None:
    """Two voxels annotated (classes 0 and 1), two not: the mean of -log p(true class)."""
    logits = torch.tensor([[[[2.0, 0.0, 5.0, -3.0]], [[0.0, 1.0, -5.0, 3.0]]]])  # (1, 2, 1, 4)
    target = torch.tensor([[[0, 1, IGNORE, IGNORE]]])
    by_hand = (-math.log(math.exp(2) / (math.exp(2) + 1)) - math.log(math.e / (1 + math.e))) / 2
    loss = SegmentationLoss("ce", ignore_index=IGNORE)(logits, target)
    assert loss.item() == pytest.approx(by_hand, abs=1e-6)


@pytest.mark.parametrize("name", ["ce", "dice", "dicece", "focal"])
def test_a_patch_without_annotation_gives_a_finite_loss_and_no_gradient(name) -> None:
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.full((2, 8, 8), IGNORE)
    loss = SegmentationLoss(name, ignore_index=IGNORE)(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() == 0.0
    assert torch.count_nonzero(logits.grad) == 0


def test_metrics_on_sparse_labels_count_annotated_voxels_only() -> None:
    logits, sparse, _, annotated = _sparse_case(1)
    pred = logits.argmax(1)
    tp, fp, fn = confusion_counts(pred, sparse, 3, IGNORE)
    for b in range(2):
        p, t = pred[b][annotated[b]], sparse[b][annotated[b]]
        for c in range(3):
            assert tp[b, c] == ((p == c) & (t == c)).sum()
            assert fp[b, c] == ((p == c) & (t != c)).sum()
            assert fn[b, c] == ((p != c) & (t == c)).sum()


def _regions(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 6, 5, 4, generator=g)
    labels = torch.randint(0, 4, (2, 6, 5, 4), generator=g)
    target = torch.stack([labels >= 1, labels >= 2, labels == 3], 1).float()  # nested regions
    return logits, target


def test_region_loss_is_sigmoid_dice_plus_bce_per_region() -> None:
    logits, target = _regions()
    probs = torch.sigmoid(logits)
    axes = (2, 3, 4)
    dice = (2 * (probs * target).sum(axes) + 1e-5) / (probs.sum(axes) + target.sum(axes) + 1e-5)
    by_hand = (1 - dice).mean() + F.binary_cross_entropy(probs, target)
    assert RegionLoss("dicece")(logits, target).item() == pytest.approx(by_hand.item(), abs=1e-5)


@pytest.mark.parametrize("name", ["ce", "dice", "dicece"])
def test_region_loss_from_slabs_is_the_whole_loss(name) -> None:
    logits, target = _regions(2)
    loss = RegionLoss(name)
    parts = [loss.sums(logits[:, :, a:b], target[:, :, a:b]) for a, b in ((0, 2), (2, 6))]
    total = {k: parts[0][k] + parts[1][k] for k in parts[0] if k != "valid"}
    total["valid"] = parts[0]["valid"] + parts[1]["valid"]
    assert loss.from_sums(total).item() == pytest.approx(loss(logits, target).item(), abs=1e-5)


def test_region_metrics_score_each_region_on_its_own() -> None:
    logits, target = _regions(3)
    pred = logits > 0
    tp, fp, fn = region_counts(pred, target)
    assert tp[0, 1] == (pred[0, 1] & target[0, 1].bool()).sum()
    assert fp[1, 2] == (pred[1, 2] & ~target[1, 2].bool()).sum()
    assert fn[1, 0] == (~pred[1, 0] & target[1, 0].bool()).sum()
    metrics = SegmentationMetrics(3, ["whole", "core", "enhancing"], multilabel=True)
    metrics.update(pred, target)
    out = metrics.compute()
    assert {r["class"] for r in metrics.last_table} == {"whole", "core", "enhancing"}
    p, t = pred[:, 2].flatten(1).float(), target[:, 2].flatten(1)
    per_case = 2 * (p * t).sum(1) / (p.sum(1) + t.sum(1))
    assert out["dice/enhancing"].item() == pytest.approx(per_case.mean().item(), abs=1e-6)


def test_a_region_module_trains_and_validates_volumes_in_slabs() -> None:
    """multilabel: RegionLoss, masks from logits > 0, and whole-volume validation by
    slabs equal to the loss and metrics of the whole."""
    from scseg.training.module import SegmentationModule

    torch.manual_seed(0)
    module = SegmentationModule(arch="unet", spatial_dims=3, classes=3, multilabel=True,
                                model_options={"channels": [4, 8]}, roi_size=[8, 8, 8],
                                sw_batch_size=2)  # fmt: skip
    assert isinstance(module.loss, RegionLoss)
    x = torch.randn(1, 1, 12, 10, 8)
    _, target = _regions(4)
    target = target[:1, :, :, :, :].repeat(1, 1, 2, 2, 2)[:, :, :12, :10, :8]
    loss = module._volume_loss_and_update(x, target, module.val_metrics)
    with torch.no_grad():
        slabs = list(module.logit_slabs(x))
    axis = slabs[0][0]
    logits = torch.cat([slab for _, _, _, slab in slabs], axis + 2)  # the whole volume's
    assert len(slabs) > 1 and logits.shape[2:] == x.shape[2:]
    assert loss.item() == pytest.approx(module.loss(logits, target).item(), abs=1e-4)
    expected = SegmentationMetrics(3, multilabel=True)
    expected.update(logits > 0, target)
    assert torch.allclose(
        expected.compute()["dice_mean"], module.val_metrics.compute()["dice_mean"]
    )
    with pytest.raises(ValueError, match="multilabel regions with ignore_index"):
        SegmentationModule(arch="unet", spatial_dims=3, classes=3, multilabel=True, ignore_index=3)
