"""Capture of the recalibration each decoder block applies: sSE spatial maps and cSE
channel weights, by forward hooks that are removed afterwards.

    maps = capture(model, x, upsample=True)
    maps.sse[i]   # (B, 1, *spatial) for block i, or None where the block has no sSE
    maps.cse[i]   # (B, C_i), or None where the block has no cSE
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from scseg.atlas import LabelPrior
from scseg.layers import ChannelSE, ChannelSpatialSE, SpatialSE

_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


@dataclass
class AttentionMaps:
    """What :func:`capture` returns; lists are indexed like ``model.decoder.blocks``
    (deepest first) and hold ``None`` for a part a block does not have."""

    output: torch.Tensor
    sse: list[torch.Tensor | None] = field(default_factory=list)
    cse: list[torch.Tensor | None] = field(default_factory=list)


def _network(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """What runs an input, and the U-Net in it whose decoder blocks are hooked: the
    U-Net inside a LightningModule or a loaded model, or ``model`` itself; a label-prior
    model (:class:`~scseg.atlas.model.LabelPrior`) runs whole around its U-Net."""
    inner = getattr(model, "net", None)
    for outer in (model, inner):
        if isinstance(outer, LabelPrior):
            return outer, outer.net
    if isinstance(inner, nn.Module) and hasattr(inner, "decoder"):
        return inner, inner
    if not hasattr(model, "decoder") or not hasattr(model.decoder, "blocks"):
        raise ValueError("expected an scseg U-Net (with decoder.blocks) or a module holding one")
    return model, model


def _parts(attention: nn.Module) -> tuple[ChannelSE | None, SpatialSE | None]:
    if isinstance(attention, ChannelSpatialSE):
        return attention.cse, attention.sse
    if isinstance(attention, ChannelSE):
        return attention, None
    if isinstance(attention, SpatialSE):
        return None, attention
    return None, None


def capture(model: nn.Module, x: torch.Tensor, upsample: bool = False) -> AttentionMaps:
    """Runs ``model(x)`` without gradients and records every decoder block's recalibration.

    Args:
        model: an scseg U-Net, or anything holding one as ``.net`` (a SegmentationModule, a
            loaded checkpoint). Its train/eval mode is left as it is (use eval mode for the
            maps of a trained model).
        x: input ``(B, C, *spatial)``.
        upsample: resize the sSE maps to the input's spatial size (linear interpolation).

    Returns:
        the output and, per decoder block, the sSE map ``(B, 1, *spatial)`` and the cSE
        weights ``(B, C)``: the sigmoid gates the block multiplies by.

    The hooks are removed before returning, also when the forward pass fails; the model's
    output is exactly what it is without capture.
    """
    runner, net = _network(model)
    blocks = net.decoder.blocks
    sse: list[torch.Tensor | None] = [None] * len(blocks)
    cse: list[torch.Tensor | None] = [None] * len(blocks)
    handles = []

    def keep(store: list, index: int):
        def hook(module: nn.Module, inputs, output: torch.Tensor) -> None:
            store[index] = output.detach()

        return hook

    try:
        for i, block in enumerate(blocks):
            channel, spatial = _parts(block.attention)
            if channel is not None:
                handles.append(channel.gate.register_forward_hook(keep(cse, i)))
            if spatial is not None:
                handles.append(spatial.gate.register_forward_hook(keep(sse, i)))
        with torch.no_grad():
            output = runner(x)
    finally:
        for handle in handles:
            handle.remove()
    cse = [w.flatten(1) if w is not None else None for w in cse]
    if upsample:
        size = x.shape[2:]
        mode = _MODES[x.ndim - 2]
        sse = [
            F.interpolate(m, size=size, mode=mode, align_corners=False) if m is not None else None
            for m in sse
        ]
    return AttentionMaps(output, sse, cse)


def gate_by_class(
    maps: AttentionMaps,
    prediction: torch.Tensor,
    class_names: list[str] | None = None,
    index: int = 0,
) -> list[dict]:
    """Per predicted class and decoder block: the mean sSE gate inside the class's predicted
    voxels and outside them, with the class's voxel count and share of the image.

    Args:
        maps: from :func:`capture` with ``upsample=True`` (maps at the input's size).
        prediction: ``(B, *spatial)`` predicted classes.
        class_names: names by class index (default ``class 0``, ...).
        index: which sample of the batch.

    Returns:
        one dict per (class, block) with keys ``class``, ``name``, ``voxels``, ``share``,
        ``block``, ``inside``, ``outside`` (NaN where the class has no voxel, or fills the
        image); classes in index order, blocks deepest first. Empty without sSE.
    """
    labels = prediction[index].reshape(-1)
    counts = torch.bincount(labels, minlength=len(class_names or ())).tolist()
    names = list(class_names or [])
    names += [f"class {c}" for c in range(len(names), len(counts))]
    rows = []
    for block, gate in enumerate(maps.sse):
        if gate is None:
            continue
        if gate.shape[2:] != prediction.shape[1:]:
            raise ValueError(
                f"sSE map {block} is {tuple(gate.shape[2:])}, the prediction "
                f"{tuple(prediction.shape[1:])}: capture with upsample=True"
            )
        values = gate[index, 0].reshape(-1).double()
        inside = torch.bincount(labels, weights=values, minlength=len(counts)).tolist()
        total = float(values.sum())
        for cls, n in enumerate(counts):
            rest = labels.numel() - n
            rows.append({
                "class": cls,
                "name": names[cls],
                "voxels": n,
                "share": n / labels.numel(),
                "block": block,
                "inside": inside[cls] / n if n else float("nan"),
                "outside": (total - inside[cls]) / rest if rest else float("nan"),
            })  # fmt: skip
    return rows
