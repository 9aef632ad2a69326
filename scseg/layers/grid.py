"""Where a strided network's coarse voxels sit on its input grid: labels taken down to a
coarser output (deep supervision, the label prior) and logits brought up to the input,
both in register with the strided convolutions."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from scseg.layers.blocks import per_axis

_INTERP = {1: "linear", 2: "bilinear", 3: "trilinear"}


def downsample_labels(labels: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Labels (or masks) ``(..., *spatial)`` at a coarser output's ``size``: voxel ``j``
    takes input voxel ``stride * j``, where the strided convolutions centre it (see
    :func:`upsample_to`), for power-of-two strides inferred from the sizes (the smallest
    with ``ceil(n / stride) == m``). nnU-Net's ``DownsampleSegForDSTransform`` resamples
    with nearest neighbours the same way."""
    spatial = labels.shape[labels.ndim - len(size) :]
    if tuple(spatial) == tuple(size):
        return labels
    index: list[slice] = [slice(None)] * (labels.ndim - len(size))
    for n, m in zip(spatial, size, strict=True):
        stride = 1 << (max(1, -(-n // m)) - 1).bit_length()
        index.append(slice(0, stride * (m - 1) + 1, stride))
    return labels[tuple(index)]


def upsample_to(
    logits: torch.Tensor, size: Sequence[int], stride: int | Sequence[int]
) -> torch.Tensor:
    """Logits at ``stride`` (a strided stem's, or a coarser block's; an int or one per
    axis), linearly interpolated to the input's ``size``, in register with it.

    The encoder's strided convolutions (kernel 3, padding 1) centre voxel ``j`` on input
    voxel ``stride * j``, so input voxel ``i`` lies at ``i / stride`` on the logits' grid:
    ``align_corners=True`` onto ``stride * (m - 1) + 1`` voxels puts it there exactly
    (``align_corners=False`` to the input size would shift it by half an input voxel at
    stride 2), and the last ``stride - 1`` voxels repeat the edge.
    """
    spatial_dims = logits.ndim - 2
    stride = per_axis(stride, spatial_dims, "stride")
    if set(stride) == {1} and tuple(logits.shape[2:]) == tuple(size):
        return logits
    target = [s * (m - 1) + 1 for s, m in zip(stride, logits.shape[2:], strict=True)]
    up = F.interpolate(logits, size=target, mode=_INTERP[spatial_dims], align_corners=True)
    if max(stride) > 1:  # F.pad lists the last axis first
        up = F.pad(up, [p for s in reversed(stride) for p in (0, s - 1)], mode="replicate")
    return up[(..., *[slice(0, s) for s in size])]
