"""N-d building blocks: squeeze-and-excitation recalibration and convolution blocks."""

from scseg.layers.attention import (
    ChannelSE,
    ChannelSpatialSE,
    SpatialSE,
    attention_names,
    create_attention,
    reduced_channels,
)
from scseg.layers.blocks import conv_block

__all__ = [
    "ChannelSE",
    "ChannelSpatialSE",
    "SpatialSE",
    "attention_names",
    "conv_block",
    "create_attention",
    "reduced_channels",
]
