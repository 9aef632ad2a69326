"""Softmax probabilities with test-time mirroring (``LoadedModel.probabilities``)."""

from __future__ import annotations

import pytest
import torch

from scseg.inference.volume import sliding_window_probabilities

from .conftest import tiny_model


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_mirrored_probabilities_average_every_flip(spatial_dims: int) -> None:
    """TTA: the mean of the softmax over all 2**dims mirror combinations, flipped back."""
    model = tiny_model(spatial_dims)
    x = torch.randn(1, 1, *([32] * spatial_dims if spatial_dims == 2 else [16] * 3))
    got = model.probabilities(x, model.net, tta=True)
    expected = []
    with torch.no_grad():
        for mask in range(2**spatial_dims):
            dims = [2 + i for i in range(spatial_dims) if mask >> i & 1]
            y = torch.softmax(model.net(torch.flip(x, dims)), 1)
            expected.append(torch.flip(y, dims))
    torch.testing.assert_close(got, torch.stack(expected).mean(0))
    torch.testing.assert_close(model.probabilities(x, model.net), expected[0])  # no TTA


def test_sliding_window_tta_runs_through_the_same_mirroring() -> None:
    """One window covering the volume: the 3D path equals the mirrored mean (it once failed
    with TTA, averaging an inference tensor in place outside inference mode)."""
    model = tiny_model(3)
    x = torch.randn(1, 1, 16, 16, 16)
    got = sliding_window_probabilities(model, x, (16, 16, 16), tta=True)
    torch.testing.assert_close(got, model.probabilities(x, model.net, tta=True))


@pytest.mark.parametrize(("spatial_dims", "mirrored"), [(3, []), (3, [0]), (3, [1, 2]), (2, [1])])
def test_mirroring_keeps_to_the_axes_mirrored_in_training(spatial_dims, mirrored) -> None:
    """A model trained without mirroring left-right (a parcellation's left and right
    structures) is never shown a mirrored brain: TTA averages over the training's mirror
    axes only (none: one plain pass)."""
    model = tiny_model(spatial_dims)
    model.data_info["mirror_axes"] = mirrored
    x = torch.randn(1, 1, *([32, 64] if spatial_dims == 2 else [8, 12, 16]))
    got = model.probabilities(x, model.net, tta=True)
    expected = []
    for mask in range(2 ** len(mirrored)):
        dims = [2 + a for i, a in enumerate(mirrored) if mask >> i & 1]
        expected.append(torch.flip(model.probabilities(torch.flip(x, dims), model.net), dims))
    torch.testing.assert_close(got, torch.stack(expected).mean(0))
    if not mirrored:
        torch.testing.assert_close(got, model.probabilities(x, model.net))
    del model.data_info["mirror_axes"]  # an older checkpoint: every axis, which differs
    assert not torch.allclose(got, model.probabilities(x, model.net, tta=True))
