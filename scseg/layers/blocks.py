"""N-d convolution blocks, taken from MONAI's DynUNet so 2D and 3D share one definition."""

from __future__ import annotations

from monai.networks.blocks.dynunet_block import UnetBasicBlock, UnetResBlock
from torch import nn

BLOCKS = {"plain": UnetBasicBlock, "residual": UnetResBlock}
NormSpec = str | tuple
ActSpec = str | tuple

DEFAULT_ACT: tuple = ("leakyrelu", {"inplace": True, "negative_slope": 0.01})


def conv_block(
    kind: str,
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    stride: int = 1,
    norm: NormSpec = "instance",
    act: ActSpec = DEFAULT_ACT,
    dropout: float | None = None,
) -> nn.Module:
    """Two 3x3(x3) convolutions with norm and activation, plain or residual.

    Args:
        kind: ``"plain"`` (conv-norm-act x2, nnU-Net) or ``"residual"`` (with an identity
            or 1x1 projection shortcut).
        spatial_dims: 1, 2 or 3.
        stride: stride of the first convolution (2 downsamples).
        norm, act: MONAI layer-factory names, optionally with arguments, e.g. ``"batch"``,
            ``("group", {"num_groups": 8})``.

    Raises:
        ValueError: for an unknown ``kind``.
    """
    if kind not in BLOCKS:
        raise ValueError(f"unknown block kind {kind!r}; choose one of: {', '.join(BLOCKS)}")
    return BLOCKS[kind](
        spatial_dims,
        in_channels,
        out_channels,
        kernel_size=3,
        stride=stride,
        norm_name=norm,
        act_name=act,
        dropout=dropout,
    )
