"""Assembled U-Nets: an encoder, the recalibrated decoder and a 1x1 head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers.factories import Conv
from torch import nn

from scseg.layers.attention import ATTENTION
from scseg.layers.blocks import ActSpec, NormSpec, per_axis
from scseg.layers.grid import upsample_to
from scseg.models.decoder import UnetDecoder
from scseg.models.encoders import NdEncoder, SMPEncoder
from scseg.registry import Registry

MODELS: Registry = Registry("model")


INITS = ("default", "he")


def he_init_(net: nn.Module, negative_slope: float = 1e-2) -> nn.Module:
    """nnU-Net's initialisation (``InitWeights_He(1e-2)`` of dynamic-network-architectures),
    in place: every convolution and transposed convolution He-normal for leaky ReLU,
    biases zero. PyTorch's own default draws weights about 2.45 times smaller; behind a
    normalisation the forward pass does not see the scale, but Adam's steps are the same
    size either way, so smaller weights turn faster (a larger effective learning rate)."""
    convs = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
             nn.ConvTranspose3d)  # fmt: skip
    for module in net.modules():
        if isinstance(module, convs):
            nn.init.kaiming_normal_(module.weight, a=negative_slope)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return net


def attention_options(name: str, reduction: float, combine: str) -> dict:
    """The options among ``reduction``/``combine`` that attention ``name`` takes.

    Flat options let ``--model.attention sse`` override a config that sets ``reduction``.
    """
    return ATTENTION.accepted(name, {"reduction": reduction, "combine": combine})


class SEUnet(nn.Module):
    """U-Net whose every decoder block is followed by cSE, sSE or scSE recalibration.

    Build it with :func:`scseg.create_model`; the constructor takes a ready encoder.

    Args:
        encoder: a module with ``out_channels``, ``strides``, ``requires_divisible_input``
            and ``forward(x) -> features`` (shallow to deep).
        spatial_dims: 1, 2 or 3.
        classes: output channels (logits, no activation).
        decoder: a :class:`UnetDecoder` over ``encoder.out_channels``.
        head_kernel_size: 3 (the default, as SMP's heads) or 1 (nnU-Net's).
        deep_supervision: number of auxiliary heads on the decoder blocks before the last;
            in training mode ``forward`` then returns ``[logits, aux_1, ...]`` (``aux_1``
            from the next-finest block). 0 turns it off.
        deep_supervision_at: ``"input"``: the auxiliary logits are interpolated to the
            input's resolution; ``"own"``: each stays at its block's resolution and the
            loss takes the labels there (:func:`~scseg.layers.grid.downsample_labels`), as
            nnU-Net does: at 137 classes most of a step's time and memory otherwise go to
            upsampled logits.

    Shapes:
        forward: ``(B, in_channels, *spatial) -> (B, classes, *spatial)``.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: UnetDecoder,
        spatial_dims: int,
        classes: int,
        deep_supervision: int = 0,
        head_kernel_size: int = 3,
        deep_supervision_at: str = "input",
    ) -> None:
        super().__init__()
        if deep_supervision_at not in ("input", "own"):
            raise ValueError(f"deep_supervision_at must be 'input' or 'own', got "
                             f"{deep_supervision_at!r}")  # fmt: skip
        self.deep_supervision_at = deep_supervision_at
        if classes < 1:
            raise ValueError(f"classes must be >= 1, got {classes}")
        n_blocks = len(decoder.blocks)
        if not 0 <= deep_supervision < n_blocks:
            raise ValueError(
                f"deep_supervision must be in 0..{n_blocks - 1}, got {deep_supervision}"
            )
        self.spatial_dims = spatial_dims
        self.encoder = encoder
        self.decoder = decoder
        conv = Conv[Conv.CONV, spatial_dims]
        if head_kernel_size not in (1, 3):
            raise ValueError(f"head_kernel_size must be 1 or 3, got {head_kernel_size}")
        # A 3x3 head, as SMP's: with many classes on a narrow last block (137 structures
        # from 16 channels), a 1x1 head is a rank-16 bottleneck that trained several times
        # slower (benchmarks/results/parcellation.md).
        self.head = conv(decoder.out_channels[-1], classes, kernel_size=head_kernel_size,
                         padding=head_kernel_size // 2)  # fmt: skip
        self.aux_heads = nn.ModuleList(
            conv(decoder.out_channels[-2 - i], classes, kernel_size=1)
            for i in range(deep_supervision)
        )
        # an int, or one per axis where the encoder leaves a coarse axis unpooled
        self.size_divisor = encoder.strides[-1]
        # stride of each decoder block's output (deep to shallow), per axis: its skip's, and
        # half the previous one for blocks beyond the skips
        strides = [per_axis(s, spatial_dims, "strides") for s in encoder.strides]
        self.block_strides: list[tuple[int, ...]] = []
        for i in range(n_blocks):
            previous = self.block_strides[-1] if self.block_strides else strides[-1]
            self.block_strides.append(
                strides[-2 - i] if i < len(strides) - 1 else tuple(v // 2 for v in previous)
            )

    def check_input_shape(self, x: torch.Tensor) -> None:
        """Raises ``ValueError`` for a tensor this model cannot segment."""
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(
                f"expected a (B, C, {self.spatial_dims} spatial axes) tensor, got shape "
                f"{tuple(x.shape)}"
            )
        sizes = x.shape[2:]
        divisor = per_axis(self.size_divisor, self.spatial_dims)
        if self.encoder.requires_divisible_input and any(
            s % d for s, d in zip(sizes, divisor, strict=True)
        ):
            raise ValueError(
                f"input size {tuple(sizes)} is not divisible by {self.size_divisor}, as this "
                "encoder requires; pad or crop the input (e.g. monai.transforms.DivisiblePad)"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        self.check_input_shape(x)
        outputs = self.decoder(self.encoder(x))
        size = x.shape[2:]
        logits = upsample_to(self.head(outputs[-1]), size, self.block_strides[-1])
        if not (self.training and self.aux_heads):
            return logits
        if self.deep_supervision_at == "own":
            return [logits, *(head(outputs[-2 - i]) for i, head in enumerate(self.aux_heads))]
        aux = [
            upsample_to(head(outputs[-2 - i]), size, self.block_strides[-2 - i])
            for i, head in enumerate(self.aux_heads)
        ]
        return [logits, *aux]


@MODELS.register("smp_unet")
def smp_unet(
    *,
    spatial_dims: int = 2,
    in_channels: int,
    classes: int,
    attention: str = "scse",
    reduction: float = 16,
    combine: str = "add",
    encoder_name: str = "resnet34",
    encoder_depth: int = 5,
    encoder_weights: str | None = None,
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    decoder_norm: NormSpec = "batch",
    decoder_act: ActSpec = ("relu", {"inplace": True}),
    deep_supervision: int = 0,
    head_kernel_size: int = 3,
    deep_supervision_at: str = "input",
) -> SEUnet:
    """2D U-Net on any segmentation-models-pytorch encoder (SMP's argument names).

    Input height and width must be divisible by ``2 ** encoder_depth``.

    Raises:
        ValueError: for ``spatial_dims != 2``, unknown names or inconsistent sizes.
    """
    if spatial_dims != 2:
        raise ValueError(
            f"smp_unet is 2D only (SMP encoders are 2D), got spatial_dims={spatial_dims}; "
            "use 'unet' or 'resunet' for 3D"
        )
    if len(decoder_channels) != encoder_depth:
        raise ValueError(
            f"decoder_channels needs {encoder_depth} entries (one per encoder stage), "
            f"got {list(decoder_channels)}"
        )
    encoder = SMPEncoder(encoder_name, in_channels, encoder_depth, encoder_weights)
    decoder = UnetDecoder(
        2,
        encoder.out_channels,
        decoder_channels,
        block="plain",
        norm=decoder_norm,
        act=decoder_act,
        attention=attention,
        attention_kwargs=attention_options(attention, reduction, combine),
    )
    return SEUnet(encoder, decoder, 2, classes, deep_supervision, head_kernel_size,
                  deep_supervision_at)  # fmt: skip


def _nd_unet(
    block: str,
    spatial_dims: int,
    in_channels: int,
    classes: int,
    attention: str,
    reduction: float,
    combine: str,
    channels: Sequence[int],
    norm: NormSpec,
    act: ActSpec,
    dropout: float | None,
    encoder_attention: bool,
    deep_supervision: int,
    stem_stride: int,
    upsample: str,
    head_kernel_size: int,
    strides: Sequence[int | Sequence[int]] | None = None,
    kernel_sizes: Sequence[int | Sequence[int]] | None = None,
    deep_supervision_at: str = "input",
    init: str = "default",
) -> SEUnet:
    if spatial_dims not in (1, 2, 3):
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    options = attention_options(attention, reduction, combine)
    encoder = NdEncoder(
        spatial_dims,
        in_channels,
        tuple(channels),
        block,
        norm,
        act,
        dropout,
        attention=attention if encoder_attention else "none",
        attention_kwargs=options if encoder_attention else None,
        stem_stride=stem_stride,
        strides=strides,
        kernel_sizes=kernel_sizes,
    )
    # block i climbs back from encoder stage -1 - i to stage -2 - i, with that one's kernel
    decoder = UnetDecoder(
        spatial_dims,
        encoder.out_channels,
        list(channels[:-1])[::-1],
        block,
        norm,
        act,
        attention,
        options,
        upsample,
        scales=encoder.stage_strides[1:][::-1],
        kernel_sizes=None if kernel_sizes is None else list(kernel_sizes[:-1])[::-1],
    )
    net = SEUnet(encoder, decoder, spatial_dims, classes, deep_supervision, head_kernel_size,
                 deep_supervision_at)  # fmt: skip
    return he_init_(net) if init == "he" else net


@MODELS.register("unet")
def unet(
    *,
    spatial_dims: int,
    in_channels: int,
    classes: int,
    attention: str = "scse",
    reduction: float = 16,
    combine: str = "add",
    channels: Sequence[int] = (32, 64, 128, 256, 320),
    norm: NormSpec = "instance",
    act: ActSpec = ("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
    dropout: float | None = None,
    encoder_attention: bool = False,
    deep_supervision: int = 0,
    stem_stride: int = 1,
    upsample: str = "transposed",
    head_kernel_size: int = 3,
    strides: Sequence[int | Sequence[int]] | None = None,
    kernel_sizes: Sequence[int | Sequence[int]] | None = None,
    deep_supervision_at: str = "input",
    init: str = "default",
) -> SEUnet:
    """N-d U-Net with plain conv-norm-act blocks (nnU-Net style), any input size.

    ``channels`` are the encoder widths; the decoder mirrors them and upsamples by
    transposed convolution, as nnU-Net does (``upsample="nearest"`` repeats voxels instead).
    ``stem_stride=2`` downsamples in the first stage, as MONAI's ``UNet`` does: no
    full-resolution features, logits upsampled to the input, about a tenth of the compute
    on 3D patches. ``strides`` and ``kernel_sizes`` (one per stage, each an int or one per
    axis) are nnU-Net's pooling and kernels for anisotropic data, as ``scseg plan`` writes
    them: ``strides=[1, (2, 2, 1), 2, 2]`` leaves thick slices along the third axis unpooled
    at first (:class:`scseg.models.encoders.NdEncoder`). ``init="he"`` initialises as
    nnU-Net (:func:`he_init_`); with ``norm=("instance", {"affine": True})`` the blocks
    are nnU-Net's (its convolution bias would be taken out again by the norm).
    """
    return _nd_unet(
        "plain", spatial_dims, in_channels, classes, attention, reduction, combine,
        channels, norm, act, dropout, encoder_attention, deep_supervision, stem_stride,
        upsample, head_kernel_size, strides, kernel_sizes, deep_supervision_at, init,
    )  # fmt: skip


@MODELS.register("resunet")
def resunet(
    *,
    spatial_dims: int,
    in_channels: int,
    classes: int,
    attention: str = "scse",
    reduction: float = 16,
    combine: str = "add",
    channels: Sequence[int] = (32, 64, 128, 256, 320),
    norm: NormSpec = "instance",
    act: ActSpec = ("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
    dropout: float | None = None,
    encoder_attention: bool = False,
    deep_supervision: int = 0,
    stem_stride: int = 1,
    upsample: str = "transposed",
    head_kernel_size: int = 3,
    strides: Sequence[int | Sequence[int]] | None = None,
    kernel_sizes: Sequence[int | Sequence[int]] | None = None,
    deep_supervision_at: str = "input",
    init: str = "default",
) -> SEUnet:
    """N-d U-Net with residual blocks in encoder and decoder, any input size.

    ``stem_stride``, ``upsample``, ``strides``, ``kernel_sizes``, ``init``: as for
    :func:`unet`.
    """
    return _nd_unet(
        "residual", spatial_dims, in_channels, classes, attention, reduction, combine,
        channels, norm, act, dropout, encoder_attention, deep_supervision, stem_stride,
        upsample, head_kernel_size, strides, kernel_sizes, deep_supervision_at, init,
    )  # fmt: skip
