"""A 2D network over a 3D volume, slice by slice (QuickNAT, and the scSE paper's networks)."""

from __future__ import annotations

from collections.abc import Callable

import torch


def slicewise(
    predict: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    axis: int,
    batch_size: int = 16,
) -> torch.Tensor:
    """Applies a 2D predictor to every slice of a volume batch along one spatial axis.

    Args:
        predict: ``(N, C, H, W) -> (N, K, H, W)``, e.g. a 2D network.
        x: ``(B, C, X, Y, Z)``.
        axis: the spatial axis the slices are taken across (0, 1 or 2: for RAS volumes
            sagittal, coronal or axial slices).
        batch_size: slices per call of ``predict``.

    Returns:
        ``(B, K, X, Y, Z)``; each slice's output is written into one preallocated tensor,
        so the peak is one output volume and one batch.
    """
    if x.ndim != 5:
        raise ValueError(f"expected (B, C, X, Y, Z), got shape {tuple(x.shape)}")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    dim = axis + 2
    slices = x.movedim(dim, 1)  # (B, S, C, H, W), a view
    b, s = slices.shape[:2]
    flat = slices.reshape(b * s, *slices.shape[2:])
    out = None
    for start in range(0, b * s, max(1, batch_size)):
        part = predict(flat[start : start + batch_size])
        if out is None:
            out = part.new_empty((b * s, *part.shape[1:]))
        out[start : start + part.shape[0]] = part
    return out.reshape(b, s, *out.shape[1:]).movedim(1, dim)
