"""Encoders, the recalibrated U-Net decoder, and assembled models."""

from __future__ import annotations

from torch import nn

from scseg.atlas import LabelPrior
from scseg.layers.fused import CHANNELS_LAST
from scseg.models import peers as _peers  # noqa: F401  (registers the peer networks)
from scseg.models.decoder import DecoderBlock, UnetDecoder
from scseg.models.encoders import NdEncoder, SMPEncoder
from scseg.models.unet import MODELS, SEUnet


def create_model(
    name: str,
    *,
    spatial_dims: int,
    in_channels: int,
    classes: int,
    attention: str = "scse",
    label_prior: bool = False,
    prior_strength: float = LabelPrior.STRENGTH,
    **kwargs,
) -> nn.Module:
    """Builds a registered model.

    Args:
        name: one of :func:`list_models` (``"smp_unet"``, ``"unet"``, ``"resunet"``).
        spatial_dims: 2 or 3 (``smp_unet`` is 2D only).
        in_channels: input channels.
        classes: output channels (logits).
        attention: ``"none"``, ``"cse"``, ``"sse"`` or ``"scse"``, after every decoder block.
        label_prior: the model refines a registered atlas (:class:`LabelPrior`): it takes
            ``in_channels + 1`` channels, the last a prior label map.
        prior_strength: with ``label_prior``, the prior's logit at the start of training
            (learnt; a trained model keeps its own).
        **kwargs: the model's own options (see its factory in :mod:`scseg.models.unet`);
            an option it does not take raises ``ValueError``.

    Raises:
        ValueError: for an unknown model or attention name, or a bad option.
    """
    net = MODELS.build(
        name,
        spatial_dims=spatial_dims,
        in_channels=in_channels + LabelPrior.EMBEDDING if label_prior else in_channels,
        classes=classes,
        attention=attention,
        **kwargs,
    )
    return LabelPrior(net, classes, strength=prior_strength) if label_prior else net


def to_channels_last(net: nn.Module, spatial_dims: int) -> nn.Module:
    """Converts ``net``'s weights, in place, to the channels-last layout for its dims.

    Inputs need no conversion: the first convolution follows its weight's layout, and every
    later layer follows its input's. 1D models are left as they are (no such layout).
    """
    fmt = CHANNELS_LAST.get(spatial_dims + 2)
    return net.to(memory_format=fmt) if fmt is not None else net


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return MODELS.names()


__all__ = [
    "DecoderBlock",
    "LabelPrior",
    "NdEncoder",
    "SEUnet",
    "SMPEncoder",
    "UnetDecoder",
    "create_model",
    "list_models",
    "to_channels_last",
]
