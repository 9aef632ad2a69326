"""Logits as slabs: the streamed sliding window is MONAI's, value for value, while holding
one slab of the output at a time."""

from __future__ import annotations

import pytest
import torch
from monai.inferers import sliding_window_inference

import scseg
from scseg.models.slabs import gather, sliding_window_slabs


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    torch.manual_seed(0)
    return scseg.create_model("unet", spatial_dims=3, in_channels=1, classes=5,
                              channels=(4, 8, 16)).eval()  # fmt: skip


@pytest.mark.parametrize(
    ("shape", "overlap", "sw_batch_size"),
    [
        ((1, 1, 45, 29, 33), 0.5, 3),  # windows from several rows in one batch
        ((2, 1, 20, 16, 41), 0.25, 4),  # two images
        ((1, 1, 10, 40, 12), 0.5, 1),  # smaller than a window along two axes: padded
        ((1, 1, 16, 16, 16), 0.5, 2),  # exactly one window
        ((1, 1, 50, 20, 20), 0.75, 5),
    ],
)
def test_slabs_equal_monai_bit_for_bit(net, shape, overlap, sw_batch_size) -> None:
    torch.manual_seed(1)
    x = torch.randn(shape)
    with torch.inference_mode():
        expected = sliding_window_inference(x, (16, 16, 16), sw_batch_size, net,
                                            overlap=overlap, mode="gaussian")  # fmt: skip
        slabs = list(sliding_window_slabs(x, (16, 16, 16), sw_batch_size, net, overlap))
    assert torch.equal(gather(iter(slabs)), expected)
    # Each image is covered once, in order, along axis 0.
    covered: list[list[tuple[int, int]]] = []
    for axis, start, stop, _ in slabs:
        assert axis == 0
        if start == 0:
            covered.append([])
        covered[-1].append((start, stop))
    for ranges in covered:
        assert [a for a, _ in ranges[1:]] == [b for _, b in ranges[:-1]]
        assert ranges[-1][1] == shape[2]
    assert len(covered) == shape[0]


def test_slabs_hold_part_of_the_volume(net) -> None:
    """A long volume comes in many slabs, none much thicker than a window plus a step."""
    x = torch.randn(1, 1, 96, 16, 16)
    with torch.inference_mode():
        sizes = [p.shape[2] for *_, p in sliding_window_slabs(x, (16, 16, 16), 1, net, 0.5)]
    assert sum(sizes) == 96
    assert len(sizes) >= 10 and max(sizes) <= 16


def test_output_of_another_size_is_refused() -> None:
    def predictor(x: torch.Tensor) -> torch.Tensor:
        return x[:, :, ::2]

    with pytest.raises(ValueError, match="does not match roi"):
        list(sliding_window_slabs(torch.zeros(1, 1, 20, 20, 20), (16, 16, 16), 1, predictor))
