"""N-d convolution blocks, taken from MONAI's DynUNet so 2D and 3D share one definition."""

from __future__ import annotations

from collections.abc import Sequence

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
    stride: int | Sequence[int] = 1,
    norm: NormSpec = "instance",
    act: ActSpec = DEFAULT_ACT,
    dropout: float | None = None,
    kernel_size: int | Sequence[int] = 3,
) -> nn.Module:
    """Two 3x3(x3) convolutions with norm and activation, plain or residual.

    Args:
        kind: ``"plain"`` (conv-norm-act x2, nnU-Net) or ``"residual"`` (with an identity
            or 1x1 projection shortcut).
        spatial_dims: 1, 2 or 3.
        stride: stride of the first convolution (2 downsamples), or one per axis
            (``(2, 2, 1)`` keeps a coarse third axis).
        kernel_size: of both convolutions, or one per axis (nnU-Net's ``(3, 3, 1)`` where an
            axis is over twice as coarse as the finest).
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
        kernel_size=kernel_size,
        stride=stride,
        norm_name=norm,
        act_name=act,
        dropout=dropout,
    )


def per_axis(value: int | Sequence[int], spatial_dims: int, name: str = "value") -> tuple[int, ...]:
    """``value`` for each of ``spatial_dims`` axes: an int repeated, or a sequence of that
    length (of positive ints).

    Raises:
        ValueError: a sequence of another length, or a value below 1.
    """
    values = (value,) * spatial_dims if isinstance(value, int) else tuple(value)
    if len(values) != spatial_dims or any(int(v) != v or v < 1 for v in values):
        raise ValueError(f"{name}: expected a positive int or {spatial_dims} of them, "
                         f"got {value!r}")  # fmt: skip
    return tuple(int(v) for v in values)
