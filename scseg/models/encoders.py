"""Encoders with one contract: ``out_channels`` and ``strides`` (shallow to deep), a
``forward`` returning one feature map per entry, and ``requires_divisible_input``.

* :class:`SMPEncoder` wraps any segmentation-models-pytorch encoder (2D only).
* :class:`NdEncoder` is our own plain or residual encoder for any ``spatial_dims``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from segmentation_models_pytorch.encoders import get_encoder, get_encoder_names
from torch import nn

from scseg.layers import conv_block, create_attention
from scseg.layers.blocks import DEFAULT_ACT, ActSpec, NormSpec, per_axis

WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Reads a state dict without unpickling arbitrary objects (``weights_only=True``).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle errors come in many types
            raise ValueError(f"{path}: not a readable weights file ({err})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: holds no state dict of tensors")
    return state


class SMPEncoder(nn.Module):
    """Any segmentation-models-pytorch encoder, returning its features at strides 2..2^depth.

    Args:
        encoder_name: an SMP encoder name (``smp.encoders.get_encoder_names()``), e.g.
            ``"resnet34"``, ``"efficientnet-b0"``, ``"tu-convnext_tiny"``.
        in_channels: input channels.
        depth: number of downsampling stages (3 to 5).
        weights: ``None`` (random init, offline), an SMP weights name such as
            ``"imagenet"`` (downloaded by SMP), or a local ``.pth``/``.pt``/``.bin``/
            ``.safetensors`` file holding the encoder's state dict for 3 input channels
            (keys may carry an ``encoder.`` prefix, as in a full SMP model's state dict).

    Raises:
        ValueError: for an unknown encoder name, a bad depth, or a weights file that does
            not fit the encoder.
    """

    requires_divisible_input = True  # SMP encoders crop odd sizes inconsistently

    def __init__(
        self, encoder_name: str, in_channels: int, depth: int = 5, weights: str | None = None
    ) -> None:
        super().__init__()
        if not encoder_name.startswith("tu-") and encoder_name not in get_encoder_names():
            raise ValueError(
                f"unknown SMP encoder {encoder_name!r}; see "
                "segmentation_models_pytorch.encoders.get_encoder_names()"
            )
        if not 3 <= depth <= 5:
            raise ValueError(f"encoder_depth must be 3, 4 or 5, got {depth}")
        local = weights is not None and (
            Path(weights).suffix in WEIGHT_FILE_SUFFIXES or Path(weights).exists()
        )
        if local:
            encoder = get_encoder(encoder_name, in_channels=3, depth=depth, weights=None)
            state = load_state_dict_file(weights)
            state = {k.removeprefix("encoder."): v for k, v in state.items()}
            try:
                encoder.load_state_dict(state)
            except RuntimeError as err:
                first = str(err).splitlines()[0]
                raise ValueError(
                    f"{weights}: does not fit encoder {encoder_name!r}: {first}"
                ) from None
            if in_channels != 3:
                encoder.set_in_channels(in_channels, pretrained=True)
        else:
            encoder = get_encoder(
                encoder_name, in_channels=in_channels, depth=depth, weights=weights
            )
        self.encoder = encoder
        self.out_channels = list(encoder.out_channels[1:])
        self.strides = [2**i for i in range(1, depth + 1)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(x)[1:]  # drop SMP's identity feature: the input itself


class NdEncoder(nn.Module):
    """Our N-d U-Net encoder: a first stage at stride ``stem_stride``, then stride-2 stages.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        channels: width of each stage, shallow to deep; ``len(channels) - 1`` downsamplings.
        block: ``"plain"`` (conv-norm-act x2) or ``"residual"``.
        norm, act, dropout: see :func:`scseg.layers.conv_block`.
        attention: recalibration after every encoder stage too, as in Roy et al.
            (``"none"`` by default).
        attention_kwargs: options of that attention module.
        stem_stride: stride of the first stage. 1 (the default) keeps a full-resolution
            stage, as nnU-Net does; 2 downsamples at once, as MONAI's ``UNet`` does, for
            about a tenth of the compute on 3D patches (the model then upsamples its logits).
        strides: each stage's stride, an int or one per axis, instead of ``stem_stride``
            then 2s: nnU-Net's ``pool_op_kernel_sizes``, which leave a coarse axis unpooled
            (``[1, (2, 2, 1), (2, 2, 2), ...]`` for thick slices along the third axis).
        kernel_sizes: each stage's convolution kernel, an int or one per axis (nnU-Net's
            ``(3, 3, 1)`` while an axis is over twice as coarse as the finest); default 3.

    ``strides`` (the attribute) is each stage's cumulative stride: an int where all axes
    share it, else a tuple per axis.
    """

    requires_divisible_input = False  # the decoder upsamples to each skip's exact size

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        channels: tuple[int, ...] = (32, 64, 128, 256, 320),
        block: str = "plain",
        norm: NormSpec = "instance",
        act: ActSpec = DEFAULT_ACT,
        dropout: float | None = None,
        attention: str = "none",
        attention_kwargs: dict | None = None,
        stem_stride: int = 1,
        strides: Sequence[int | Sequence[int]] | None = None,
        kernel_sizes: Sequence[int | Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"encoder channels need at least 2 stages, got {channels}")
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        if strides is None:
            strides = [stem_stride] + [2] * (len(channels) - 1)
        elif stem_stride != 1:
            raise ValueError("give the first stage's stride in strides, not stem_stride")
        kernel_sizes = [3] * len(channels) if kernel_sizes is None else kernel_sizes
        for name, values in (("strides", strides), ("kernel_sizes", kernel_sizes)):
            if len(values) != len(channels):
                raise ValueError(f"{name} needs one entry per stage ({len(channels)}), got "
                                 f"{len(values)}: {list(values)}")  # fmt: skip
        stage_strides = [per_axis(s, spatial_dims, "strides") for s in strides]
        self.stages = nn.ModuleList()
        self.attention = nn.ModuleList()
        previous = in_channels
        for width, stride, kernel in zip(channels, stage_strides, kernel_sizes, strict=True):
            kernel = per_axis(kernel, spatial_dims, "kernel_sizes")
            self.stages.append(conv_block(block, spatial_dims, previous, width, stride, norm,
                                          act, dropout, kernel))  # fmt: skip
            self.attention.append(
                create_attention(attention, width, spatial_dims, **(attention_kwargs or {}))
            )
            previous = width
        self.out_channels = list(channels)
        self.stage_strides = stage_strides
        cumulative = [tuple(int(v) for v in np.prod(stage_strides[: i + 1], 0))
                      for i in range(len(channels))]  # fmt: skip
        self.strides = [c[0] if len(set(c)) == 1 else c for c in cumulative]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage, attention in zip(self.stages, self.attention, strict=True):
            x = attention(stage(x))
            features.append(x)
        return features
