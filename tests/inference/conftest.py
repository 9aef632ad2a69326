from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from scseg.inference import LoadedModel
from scseg.models import create_model


class ThresholdNet(nn.Module):
    """An exact 'model': class 1 wherever the input exceeds 0.5, so what comes back shows
    only what resampling and geometry handling did."""

    def __init__(self, spatial_dims: int) -> None:
        super().__init__()
        conv = nn.Conv3d if spatial_dims == 3 else nn.Conv2d
        self.conv = conv(1, 2, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([-10.0, 10.0]).view(2, 1, *[1] * spatial_dims))
            self.conv.bias.copy_(torch.tensor([5.0, -5.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@pytest.fixture
def oracle_3d() -> LoadedModel:
    info = {"patch_size": [24, 24, 24], "spacing": [1.5, 1.5, 1.5], "intensity": "none",
            "class_names": ["background", "sphere"]}  # fmt: skip
    return LoadedModel(ThresholdNet(3).eval(), 3, 1, 2, {}, info)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


def tiny_model(spatial_dims: int, stem_stride: int = 1) -> LoadedModel:
    """A small randomly initialised U-Net (2D: smp_unet resnet18; 3D: unet), eval mode."""
    torch.manual_seed(0)
    if spatial_dims == 2:
        net = create_model(
            "smp_unet", spatial_dims=2, in_channels=1, classes=3, encoder_name="resnet18",
            decoder_channels=(32, 16, 16, 8, 8),
        )  # fmt: skip
        info = {"patch_size": [64, 64]}
    else:
        net = create_model(
            "unet", spatial_dims=3, in_channels=1, classes=3, channels=(8, 16, 32),
            stem_stride=stem_stride,
        )  # fmt: skip
        info = {"patch_size": [16, 16, 16]}
    return LoadedModel(net.eval(), spatial_dims, 1, 3, {}, info)
