"""The U-Net decoder shared by 2D and 3D: every block ends in its recalibration module."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks.dynunet_block import get_conv_layer
from torch import nn

from scseg.layers import conv_block, create_attention
from scseg.layers.attention import ATTENTION
from scseg.layers.blocks import DEFAULT_ACT, ActSpec, NormSpec, per_axis

UPSAMPLE = ("nearest", "transposed")


class DecoderBlock(nn.Module):
    """Upsample, concatenate the skip, two convolutions, then ``attention`` (once).

    Recalibration sits once, after the block, as in the papers; SMP also applies it to the
    full-resolution concatenation, which costs a quarter more time for no accuracy shown.

    ``upsample="nearest"`` repeats voxels (SMP); ``"transposed"`` is a learned 2x2(x2)
    transposed convolution to the skip's width (nnU-Net), so the first convolution reads
    ``2 * skip_channels`` instead of ``in_channels + skip_channels``: a quarter less compute
    in 3D decoders. An odd skip size is met by cropping the upsampled end voxel.

    Shapes:
        forward: ``x (B, C_in, *s)``, ``skip (B, C_skip, *s')`` or ``None`` ->
        ``(B, C_out, *s')`` (``2 * s`` without a skip).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        block: str = "plain",
        norm: NormSpec = "instance",
        act: ActSpec = DEFAULT_ACT,
        attention: str = "scse",
        attention_kwargs: dict | None = None,
        upsample: str = "nearest",
        scale: int | Sequence[int] = 2,
        kernel_size: int | Sequence[int] = 3,
    ) -> None:
        super().__init__()
        if upsample not in UPSAMPLE:
            raise ValueError(f"unknown upsample {upsample!r}; choose one of: {', '.join(UPSAMPLE)}")
        self.scale = per_axis(scale, spatial_dims, "scale")
        self.up = None
        if upsample == "transposed":
            up_channels = skip_channels or in_channels
            self.up = get_conv_layer(
                spatial_dims,
                in_channels,
                up_channels,
                kernel_size=self.scale,
                stride=self.scale,
                conv_only=True,
                is_transposed=True,
            )
            in_channels = up_channels
        self.conv = conv_block(block, spatial_dims, in_channels + skip_channels, out_channels,
                               1, norm, act, kernel_size=kernel_size)  # fmt: skip
        # The block owns its conv output, so inference may scale it in place.
        options = {**(attention_kwargs or {}), **ATTENTION.accepted(attention, {"inplace": True})}
        self.attention = create_attention(attention, out_channels, spatial_dims, **options)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if self.up is not None:
            x = self.up(x)
            if skip is not None:  # scale * ceil(s / scale) voxels for a skip of s: crop the end
                x = x[(..., *(slice(0, n) for n in skip.shape[2:]))]
                x = torch.cat([x, skip], dim=1)
        elif skip is None:
            x = F.interpolate(x, scale_factor=[float(f) for f in self.scale], mode="nearest")
        else:
            # Upsample to the skip's exact size: odd sizes need no cropping or padding.
            x = F.interpolate(x, size=skip.shape[2:], mode="nearest")
            x = torch.cat([x, skip], dim=1)
        return self.attention(self.conv(x))


class UnetDecoder(nn.Module):
    """U-Net decoder over encoder features given as channel lists.

    Args:
        spatial_dims: 1, 2 or 3.
        encoder_channels: channels of the encoder features, shallow to deep.
        decoder_channels: width of each decoder block, deep to shallow. Block ``i`` takes
            the ``i``-th skip counted back from the second-deepest feature; blocks beyond the
            available skips only upsample (SMP encoders start at stride 2).
        block, norm, act: see :func:`scseg.layers.conv_block`.
        attention, attention_kwargs: the recalibration after every block.
        upsample: ``"nearest"`` or ``"transposed"``, see :class:`DecoderBlock`.
        scales: each block's upsampling factor (an int or one per axis), deep to shallow:
            the stride of the encoder stage it climbs back from; default 2.
        kernel_sizes: each block's convolution kernel, deep to shallow; default 3.

    Raises:
        ValueError: if there are fewer decoder blocks than skips.
    """

    def __init__(
        self,
        spatial_dims: int,
        encoder_channels: Sequence[int],
        decoder_channels: Sequence[int],
        block: str = "plain",
        norm: NormSpec = "instance",
        act: ActSpec = DEFAULT_ACT,
        attention: str = "scse",
        attention_kwargs: dict | None = None,
        upsample: str = "nearest",
        scales: Sequence[int | Sequence[int]] | None = None,
        kernel_sizes: Sequence[int | Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        skips = list(encoder_channels[:-1])[::-1]
        if len(decoder_channels) < len(skips):
            raise ValueError(
                f"decoder_channels needs at least {len(skips)} entries for encoder channels "
                f"{list(encoder_channels)}, got {list(decoder_channels)}"
            )
        skips += [0] * (len(decoder_channels) - len(skips))
        inputs = [encoder_channels[-1], *decoder_channels[:-1]]
        scales = [2] * len(decoder_channels) if scales is None else list(scales)
        kernel_sizes = [3] * len(decoder_channels) if kernel_sizes is None else list(kernel_sizes)
        if len(scales) != len(decoder_channels) or len(kernel_sizes) != len(decoder_channels):
            raise ValueError(
                f"scales and kernel_sizes need one entry per decoder block "
                f"({len(decoder_channels)}), got {scales} and {kernel_sizes}"
            )
        self.blocks = nn.ModuleList(
            DecoderBlock(
                spatial_dims,
                cin,
                cskip,
                cout,
                block,
                norm,
                act,
                attention,
                attention_kwargs,
                upsample=upsample,
                scale=scale,
                kernel_size=kernel,
            )
            for cin, cskip, cout, scale, kernel in zip(
                inputs, skips, decoder_channels, scales, kernel_sizes, strict=True
            )
        )
        self.out_channels = list(decoder_channels)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """Returns every block's output, deep to shallow (the last is the finest)."""
        x = features[-1]
        skips = features[:-1][::-1]
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
            outputs.append(x)
        return outputs
