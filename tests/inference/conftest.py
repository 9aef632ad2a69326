from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from scseg.inference import LoadedModel


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
