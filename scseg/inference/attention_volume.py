"""A 3D model's attention on the input's own grid: the sSE map of each decoder block
mapped back from the training spacing as the probabilities are, and the cSE weights of
each block, for a viewer that overlays them on the scan (:mod:`scseg.napari`).

The maps come from one pass of the network over the whole preprocessed volume (padded to
the network's divisor), not from the sliding windows: each window would see its own
recalibration, and a map is the network's response to the scan as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from scseg.attention_maps import capture
from scseg.inference.checkpoint import LoadedModel
from scseg.inference.inversion import checked_resampler, resampled_chunks
from scseg.inference.volume import InputError, _input_geometry, model_input
from scseg.io.dicom import DicomSeries


@dataclass
class AttentionVolume:
    """``sse``: ``(block, map (X, Y, Z) float32 in 0..1)`` on the input grid, for each
    decoder block with sSE (deepest first, as ``model.decoder.blocks``); ``cse``:
    ``(block, weights (C_block,))`` for each block with cSE."""

    sse: list[tuple[int, np.ndarray]] = field(default_factory=list)
    cse: list[tuple[int, np.ndarray]] = field(default_factory=list)


def attention_on_input(model: LoadedModel, path: str | Path | DicomSeries) -> AttentionVolume:
    """The attention of ``model`` on the scan at ``path``, its maps on the scan's grid.

    Raises:
        InputError: a 2D model, an input it cannot take, or a model without attention.
    """
    if model.spatial_dims != 3 or model.input_dims != 3:
        raise InputError(f"{path}: attention layers are drawn for 3D models")
    _, shape, _, dicom = _input_geometry(path)
    pre, data, x = model_input(model, path, shape, dicom)
    net = getattr(model.net, "members", [model.net])[0]  # a package's first fold
    x = x[None].float().to(model.device)
    sizes = x.shape[2:]
    divisor = getattr(net, "size_divisor", 1)
    pads = [(-s) % divisor for s in sizes]
    padded = F.pad(x, [p for pad in reversed(pads) for p in (0, pad)]) if any(pads) else x
    with torch.inference_mode():
        maps = capture(net, padded, upsample=True)
    crop = (0, 0, *[slice(0, s) for s in sizes])
    blocks = [k for k, m in enumerate(maps.sse) if m is not None]
    out = AttentionVolume(
        cse=[(k, w[0].float().cpu().numpy()) for k, w in enumerate(maps.cse) if w is not None]
    )
    if not blocks and not out.cse:
        raise InputError(f"{path}: the model has no attention to show (attention 'none')")
    if blocks:
        stacked = torch.stack([maps.sse[k][crop].float().cpu() for k in blocks])
        grid = tuple(shape[:3])
        image = data["image"]
        on_input = np.zeros((len(blocks), *grid), np.float32)
        resample = checked_resampler(pre, image, grid)
        for start, chunk in resampled_chunks(pre, image, stacked, grid, resample):
            on_input[start : start + chunk.shape[0]] = np.asarray(chunk)
        out.sse = [(k, on_input[i]) for i, k in enumerate(blocks)]
    return out
