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


def test_coarse_outputs_are_scored_on_labels_where_their_voxels_sit() -> None:
    """deep_supervision_at="own": a head at stride s is scored against the labels at input
    voxels s * j (where the strided convolutions centre it), odd sizes included."""
    from scseg.layers.grid import downsample_labels

    ramp = torch.arange(9).view(1, 9, 1).expand(1, 9, 5)  # labels = the index along axis 1
    assert downsample_labels(ramp, (5, 5))[0, :, 0].tolist() == [0, 2, 4, 6, 8]
    assert downsample_labels(ramp, (3, 5))[0, :, 0].tolist() == [0, 4, 8]  # stride 4
    across = torch.arange(5).view(1, 1, 5).expand(1, 9, 5)
    assert downsample_labels(across, (3, 2))[0, 0].tolist() == [0, 4]  # 5 voxels, 2: stride 4
    target = torch.randint(0, 3, (2, 9, 6))
    loss = SegmentationLoss("dicece")
    outputs = [torch.randn(2, 3, 9, 6), torch.randn(2, 3, 5, 3), torch.randn(2, 3, 3, 2)]
    expected = (4 * loss(outputs[0], target) + 2 * loss(outputs[1], target[:, ::2, ::2])
                + loss(outputs[2], target[:, ::4, ::4])) / 7  # fmt: skip
    torch.testing.assert_close(supervised_loss(loss, outputs, target), expected)


def test_heads_at_their_own_resolution_train_and_cost_less() -> None:
    """The model returns each auxiliary head at its block's size, the loss trains it, and
    the outputs hold far fewer logits than when every head is upsampled."""
    import scseg

    x, y = torch.randn(2, 1, 20, 18, 9), torch.randint(0, 4, (2, 20, 18, 9))
    sizes = {}
    for at in ("input", "own"):
        torch.manual_seed(0)
        net = scseg.create_model("unet", spatial_dims=3, in_channels=1, classes=4,
                                 channels=[4, 8, 8, 8], strides=[1, 2, (2, 2, 1), 2],
                                 deep_supervision=2, deep_supervision_at=at).train()  # fmt: skip
        outputs = net(x)
        sizes[at] = [tuple(o.shape[2:]) for o in outputs]
        supervised_loss(SegmentationLoss(), outputs, y).backward()
        assert net.aux_heads[1].weight.grad.abs().sum() > 0
    assert sizes["input"] == [(20, 18, 9)] * 3
    assert sizes["own"] == [(20, 18, 9), (10, 9, 5), (5, 5, 5)]
    with pytest.raises(ValueError, match="deep_supervision_at must be"):
        scseg.create_model("unet", spatial_dims=3, in_channels=1, classes=2,
                           deep_supervision_at="full")  # fmt: skip


def test_unknown_loss() -> None:
    with pytest.raises(ValueError, match="dice, ce, dicece, focal"):
        SegmentationLoss("lovasz")


@pytest.mark.parametrize("name", ["dice", "ce", "dicece", "focal"])
@pytest.mark.parametrize("include_background", [False, True])
@pytest.mark.parametrize("ignore_index", [None, 255])
def test_sums_over_slabs_give_the_whole_loss(name, include_background, ignore_index) -> None:
    """The loss of a volume from per-slab sums (how validation scores volumes without
    holding all their logits) equals the loss of the whole."""
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 9, 7, 5) * 3
    target = torch.randint(0, 6, (2, 1, 9, 7, 5))
    if ignore_index is not None:
        target[:, :, :2] = ignore_index
    loss = SegmentationLoss(name, include_background, ignore_index)
    parts = [
        [loss.sums(logits[b : b + 1, :, a:z], target[b : b + 1, :, a:z]) for a, z in
         [(0, 4), (4, 5), (5, 9)]]
        for b in range(2)
    ]  # fmt: skip
    cases = [{k: sum(p[k] for p in case) for k in case[0]} for case in parts]
    total = loss.from_sums({k: torch.cat([c[k] for c in cases]) for k in cases[0]})
    torch.testing.assert_close(total, loss(logits, target), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("include_background", [False, True])
@pytest.mark.parametrize("ignore_index", [None, 255])
def test_dice_term_is_monais_masked_dice_with_its_gradient(include_background, ignore_index):
    """The Dice term, formed from class counts (no one-hot), has the value and gradient of
    MONAI's MaskedDiceLoss on the one-hot target, and cross-entropy those of PyTorch's."""
    import torch.nn.functional as F
    from monai.losses import MaskedDiceLoss

    torch.manual_seed(0)
    logits = torch.randn(2, 7, 9, 6, 5, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 7, (2, 1, 9, 6, 5))
    target[0, 0, 0] = 3  # one class absent from one case: its Dice is the smoothed 1
    target[target == 5] = 4
    if ignore_index is not None:
        target[:, :, :3] = ignore_index
    valid = target[:, 0] != (ignore_index if ignore_index is not None else -1)
    clean = torch.where(valid, target[:, 0], 0)
    got = SegmentationLoss("dicece", include_background, ignore_index)(logits, target)
    onehot = F.one_hot(clean, 7).movedim(-1, 1).double()
    dice = MaskedDiceLoss(include_background=include_background, softmax=True)
    expected = (F.cross_entropy(logits, clean, reduction="none") * valid).sum() / valid.sum()
    expected = expected + dice(logits, onehot, mask=valid.unsqueeze(1).double())
    torch.testing.assert_close(got, expected)
    (grad_got,) = torch.autograd.grad(got, logits)
    (grad_expected,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(grad_got, grad_expected)
