"""Peer networks in our loop: each builds, keeps the input size, and takes our
recalibration after every decoder block (and nowhere else) when asked."""

from __future__ import annotations

import pytest
import torch

import scseg
from scseg.layers.attention import ChannelSpatialSE

PEERS = {
    "monai_unet": {"channels": [4, 8, 16]},
    "monai_dynunet": {"filters": [4, 8, 16]},
    "nnunet_plain": {"features": [4, 8, 16]},
}


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("arch", sorted(PEERS))
def test_peer_with_and_without_scse(arch, spatial_dims) -> None:
    x = torch.randn(1, 1, *[16] * spatial_dims)
    counts = {}
    for attention in ("none", "scse"):
        torch.manual_seed(0)
        net = scseg.create_model(arch, spatial_dims=spatial_dims, in_channels=1, classes=3,
                                 attention=attention, **PEERS[arch])  # fmt: skip
        assert net(x).shape == (1, 3, *x.shape[2:])
        counts[attention] = sum(isinstance(m, ChannelSpatialSE) for m in net.modules())
    # One per decoder block: two for three levels (MONAI's UNet: its last up block gives
    # the logits and stays as it is, so one).
    assert counts == {"none": 0, "scse": 1 if arch == "monai_unet" else 2}


def test_smp_reference_is_smp_unet() -> None:
    import segmentation_models_pytorch as smp

    net = scseg.create_model("smp_reference", spatial_dims=2, in_channels=1, classes=3,
                             encoder_name="resnet18")  # fmt: skip
    assert isinstance(net, smp.Unet)
    assert net(torch.randn(1, 1, 64, 64)).shape == (1, 3, 64, 64)
    with pytest.raises(ValueError, match="'scse' or 'none'"):
        scseg.create_model("smp_reference", spatial_dims=2, in_channels=1, classes=3,
                           attention="cse")  # fmt: skip
