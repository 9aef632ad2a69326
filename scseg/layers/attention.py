"""Squeeze-and-excitation recalibration for any number of spatial dimensions.

* cSE, *spatial squeeze & channel excitation* (Hu et al. 2017,
  https://arxiv.org/abs/1709.01507): one factor per channel from global statistics.
* sSE, *channel squeeze & spatial excitation* (Roy et al. 2018,
  https://arxiv.org/abs/1803.02579): one factor per location from that location's channels.
* scSE: both, combined by ``"add"`` (MICCAI paper, SMP) or ``"max"`` (journal version,
  https://arxiv.org/abs/1808.08127, and the authors' code).

The sigmoid of each module is a submodule named ``gate`` so that forward hooks can capture
the excitation weights (see :mod:`scseg.attention_maps`).
"""

from __future__ import annotations

import torch
from monai.networks.layers.factories import Conv
from torch import nn

from scseg.layers.fused import channel_project, recalibrate, squeeze_excite, use_fused_training
from scseg.registry import Registry

ATTENTION: Registry = Registry("attention")
COMBINE_MODES = ("add", "max")


def _check_dims(spatial_dims: int) -> None:
    if spatial_dims not in (1, 2, 3):
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")


def reduced_channels(channels: int, reduction: float) -> int:
    """Bottleneck width ``channels / reduction``, floored, never below 1.

    SMP's ``channels // reduction`` reaches 0 for narrow layers (16 channels, r=32), which
    silently turns cSE into a constant gate; we clamp instead.
    """
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    if reduction <= 0:
        raise ValueError(f"reduction must be > 0, got {reduction}")
    return max(1, int(channels / reduction))


def _squeeze(x: torch.Tensor) -> torch.Tensor:
    # Mean over every spatial axis: a 3D tensor is pooled over D, H and W, not only two.
    return x.mean(dim=tuple(range(2, x.ndim)), keepdim=True)


class ChannelSE(nn.Module):
    """Spatial squeeze and channel excitation (cSE).

    ``y = x * sigmoid(W2 relu(W1 mean_spatial(x)))``, with ``W1: C -> C/r`` and
    ``W2: C/r -> C`` as 1x1 convolutions.

    Args:
        channels: number of input (and output) channels ``C``.
        spatial_dims: 1, 2 or 3.
        reduction: bottleneck ratio ``r``; the hidden width is ``max(1, floor(C / r))``.
        inplace: without gradients, scale ``x`` in place (for callers that own ``x``).

    Shapes:
        forward: ``(B, C, *spatial) -> (B, C, *spatial)``; :meth:`weights` gives
        ``(B, C, 1, ..., 1)``.
    """

    def __init__(
        self, channels: int, spatial_dims: int, reduction: float = 16, inplace: bool = False
    ) -> None:
        super().__init__()
        _check_dims(spatial_dims)
        self.inplace = inplace
        hidden = reduced_channels(channels, reduction)
        conv = Conv[Conv.CONV, spatial_dims]
        self.fc1 = conv(channels, hidden, kernel_size=1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = conv(hidden, channels, kernel_size=1)
        self.gate = nn.Sigmoid()

    def excite(self, squeezed: torch.Tensor) -> torch.Tensor:
        return self.gate(self.fc2(self.act(self.fc1(squeezed))))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        return self.excite(_squeeze(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_fused_training(x):
            return squeeze_excite(x, self.excite, list(self.parameters()))
        return recalibrate(x, channel=self.weights(x), inplace=self.inplace)


class SpatialSE(nn.Module):
    """Channel squeeze and spatial excitation (sSE).

    ``y = x * sigmoid(conv1x1_{C -> 1}(x))``.

    Args:
        channels: number of input (and output) channels ``C``.
        spatial_dims: 1, 2 or 3.
        inplace: without gradients, scale ``x`` in place (for callers that own ``x``).

    Shapes:
        forward: ``(B, C, *spatial) -> (B, C, *spatial)``; :meth:`weights` gives
        ``(B, 1, *spatial)``.
    """

    def __init__(self, channels: int, spatial_dims: int, inplace: bool = False) -> None:
        super().__init__()
        _check_dims(spatial_dims)
        self.inplace = inplace
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.conv = Conv[Conv.CONV, spatial_dims](channels, 1, kernel_size=1)
        self.gate = nn.Sigmoid()

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(channel_project(x, self.conv))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_fused_training(x):
            return squeeze_excite(x, None, [], self.gate, self.conv)
        return recalibrate(x, spatial=self.weights(x), inplace=self.inplace)


class ChannelSpatialSE(nn.Module):
    """Concurrent spatial and channel squeeze & excitation (scSE).

    Args:
        channels: number of input (and output) channels ``C``.
        spatial_dims: 1, 2 or 3.
        reduction: bottleneck ratio of the cSE branch.
        combine: ``"add"``: ``cse(x) + sse(x)`` (Roy et al., MICCAI 2018; SMP);
            ``"max"``: their element-wise maximum (journal version; the authors' code).
        inplace: without gradients, scale ``x`` in place (``"add"`` only).

    Shapes:
        forward: ``(B, C, *spatial) -> (B, C, *spatial)``.
    """

    def __init__(
        self,
        channels: int,
        spatial_dims: int,
        reduction: float = 16,
        combine: str = "add",
        inplace: bool = False,
    ) -> None:
        super().__init__()
        if combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {COMBINE_MODES}, got {combine!r}")
        self.combine = combine
        self.inplace = inplace
        self.cse = ChannelSE(channels, spatial_dims, reduction)
        self.sse = SpatialSE(channels, spatial_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.combine == "add" and use_fused_training(x):
            mlp = list(self.cse.parameters())
            return squeeze_excite(x, self.cse.excite, mlp, self.sse.gate, self.sse.conv)
        c = self.cse.weights(x)
        s = self.sse.weights(x)
        if self.combine == "add":
            # x*c + x*s == x*(c+s), computed without full-size temporaries
            return recalibrate(x, channel=c, spatial=s, inplace=self.inplace)
        return torch.maximum(x * c, x * s)

    def extra_repr(self) -> str:
        return f"combine={self.combine!r}"


@ATTENTION.register("none")
def _none(channels: int, spatial_dims: int) -> nn.Module:
    _check_dims(spatial_dims)
    return nn.Identity()


@ATTENTION.register("cse")
def _cse(
    channels: int, spatial_dims: int, reduction: float = 16, inplace: bool = False
) -> nn.Module:
    return ChannelSE(channels, spatial_dims, reduction, inplace)


@ATTENTION.register("sse")
def _sse(channels: int, spatial_dims: int, inplace: bool = False) -> nn.Module:
    return SpatialSE(channels, spatial_dims, inplace)


@ATTENTION.register("scse")
def _scse(
    channels: int,
    spatial_dims: int,
    reduction: float = 16,
    combine: str = "add",
    inplace: bool = False,
) -> nn.Module:
    return ChannelSpatialSE(channels, spatial_dims, reduction, combine, inplace)


def create_attention(name: str, channels: int, spatial_dims: int, **kwargs) -> nn.Module:
    """Builds the recalibration module ``name`` for ``channels`` channels.

    Args:
        name: one of ``"none"``, ``"cse"``, ``"sse"``, ``"scse"``.
        channels: channel count of the tensor to recalibrate.
        spatial_dims: 1, 2 or 3.
        **kwargs: options of that module (``reduction`` for cse/scse, ``combine`` for
            scse); an option the module does not take raises ``ValueError``.

    Raises:
        ValueError: for an unknown name or an option that module does not take.
    """
    return ATTENTION.build(name, channels, spatial_dims, **kwargs)


def attention_names() -> list[str]:
    return ATTENTION.names()
