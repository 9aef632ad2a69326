"""Peer networks in our training loop, each with or without our recalibration after every
decoder block: MONAI's ``UNet`` and ``DynUNet``, the network nnU-Net v2 builds for
``3d_fullres`` (``PlainConvUNet`` from ``dynamic-network-architectures``), and in 2D
segmentation-models-pytorch's own ``Unet`` with its ``decoder_attention_type="scse"``.

They take the same ``spatial_dims``/``in_channels``/``classes``/``attention`` as our own
models, so a config switches with ``--model.arch monai_dynunet``; they are for comparison
(``benchmarks/parcellation.py``), and have none of our models' extras (deep supervision
through our loss, attention capture by name).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from scseg.layers.attention import ATTENTION
from scseg.models.unet import MODELS, attention_options


def recalibrated(
    block: nn.Module,
    channels: int,
    spatial_dims: int,
    attention: str,
    reduction: float = 16,
    combine: str = "add",
) -> nn.Module:
    """``block`` followed by our ``attention`` module over its ``channels`` outputs."""
    if attention == "none":
        return block
    options = attention_options(attention, reduction, combine)
    return nn.Sequential(block, ATTENTION.build(attention, channels, spatial_dims, **options))


def _out_channels(block: nn.Module) -> int:
    convs = [m for m in block.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    return convs[-1].out_channels


@MODELS.register("monai_unet")
def monai_unet(
    *,
    spatial_dims: int,
    in_channels: int,
    classes: int,
    attention: str = "none",
    reduction: float = 16,
    combine: str = "add",
    channels: Sequence[int] = (16, 32, 64, 128, 256),
    num_res_units: int = 2,
) -> nn.Module:
    """MONAI ``UNet`` (strided convolutions, residual units, downsampling in its first
    layer); ``attention`` after each up block but the last, which gives the logits."""
    from monai.networks.layers.simplelayers import SkipConnection
    from monai.networks.nets import UNet

    net = UNet(
        spatial_dims, in_channels, classes, tuple(channels), (2,) * (len(channels) - 1),
        num_res_units=num_res_units,
    )  # fmt: skip
    level = net.model  # Sequential(down, SkipConnection(inner level), up), nested
    while isinstance(level, nn.Sequential) and len(level) == 3:
        inner = level[1]
        if not isinstance(inner, SkipConnection):
            break
        sub = inner.submodule
        if isinstance(sub, nn.Sequential) and len(sub) == 3:
            sub[2] = recalibrated(sub[2], _out_channels(sub[2]), spatial_dims, attention,
                                  reduction, combine)  # fmt: skip
        level = sub
    return net


@MODELS.register("monai_dynunet")
def monai_dynunet(
    *,
    spatial_dims: int,
    in_channels: int,
    classes: int,
    attention: str = "none",
    reduction: float = 16,
    combine: str = "add",
    filters: Sequence[int] = (32, 64, 128, 256),
    res_block: bool = False,
) -> nn.Module:
    """MONAI ``DynUNet`` (nnU-Net's layout: full-resolution first stage, kernel 3, stride 2
    below it); ``attention`` after the conv block of each up block."""
    from monai.networks.nets import DynUNet

    levels = len(filters)
    net = DynUNet(
        spatial_dims, in_channels, classes, [3] * levels, [1] + [2] * (levels - 1),
        [2] * (levels - 1), filters=list(filters), res_block=res_block,
    )  # fmt: skip
    for up in net.upsamples:
        up.conv_block = recalibrated(up.conv_block, _out_channels(up.conv_block), spatial_dims,
                                     attention, reduction, combine)  # fmt: skip
    return net


@MODELS.register("nnunet_plain")
def nnunet_plain(
    *,
    spatial_dims: int,
    in_channels: int,
    classes: int,
    attention: str = "none",
    reduction: float = 16,
    combine: str = "add",
    features: Sequence[int] = (32, 64, 128, 256),
) -> nn.Module:
    """The architecture nnU-Net v2 plans for ``3d_fullres`` (``2d`` in 2D):
    ``PlainConvUNet`` with two conv-InstanceNorm-LeakyReLU per stage in encoder and
    decoder, kernel 3, stride 1 then 2, widths ``min(32 * 2^i, 320)``; ``attention`` after
    each decoder stage. Deep supervision off, as in our loop."""
    try:
        from dynamic_network_architectures.architectures.unet import PlainConvUNet
    except ImportError:
        raise ImportError(
            "nnunet_plain needs dynamic-network-architectures: "
            "pip install dynamic-network-architectures"
        ) from None

    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[spatial_dims]
    norm = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[spatial_dims]
    stages = len(features)
    net = PlainConvUNet(
        in_channels, stages, list(features), conv, 3, [1] + [2] * (stages - 1), 2, classes, 2,
        conv_bias=True, norm_op=norm, norm_op_kwargs={"eps": 1e-5, "affine": True},
        nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True}, deep_supervision=False,
    )  # fmt: skip
    for s, stage in enumerate(net.decoder.stages):
        net.decoder.stages[s] = recalibrated(stage, features[-(s + 2)], spatial_dims, attention,
                                             reduction, combine)  # fmt: skip
    return net


@MODELS.register("smp_reference")
def smp_reference(
    *,
    spatial_dims: int,
    in_channels: int,
    classes: int,
    attention: str = "scse",
    encoder_name: str = "resnet18",
    encoder_weights: str | None = None,
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
) -> nn.Module:
    """segmentation-models-pytorch's ``Unet`` as it is, ``attention`` ``"scse"`` (its own
    SCSE, added, reduction 16) or ``"none"``: the reference for our ``smp_unet``."""
    import segmentation_models_pytorch as smp

    if spatial_dims != 2:
        raise ValueError(f"smp_reference is 2D only, got spatial_dims={spatial_dims}")
    if attention not in ("scse", "none"):
        raise ValueError(f"smp's Unet has attention 'scse' or 'none', got {attention!r}")
    return smp.Unet(
        encoder_name, encoder_weights=encoder_weights, in_channels=in_channels,
        classes=classes, decoder_channels=tuple(decoder_channels),
        decoder_attention_type="scse" if attention == "scse" else None,
    )  # fmt: skip
