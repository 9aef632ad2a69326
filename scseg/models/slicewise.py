"""Running 2D networks: padded to the encoder's size divisor, and over a 3D volume slice by
slice (QuickNAT, and the scSE paper's networks)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


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


def pad_predict(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Runs ``net`` on ``x`` zero-padded to the encoder's size divisor, cropped back.

    The divisor is ``net.size_divisor`` (our models), else the encoder's ``output_stride``
    (SMP's own models); none where the encoder says it takes any size.
    """
    encoder = getattr(net, "encoder", None)
    if encoder is not None and not getattr(encoder, "requires_divisible_input", True):
        divisor = 1
    else:
        divisor = getattr(net, "size_divisor", None) or getattr(encoder, "output_stride", 1)
    sizes = x.shape[2:]
    pads = [(-s) % divisor for s in sizes]
    if not any(pads):
        return net(x)
    flat = [p for pad in reversed(pads) for p in (0, pad)]
    out = net(F.pad(x, flat))
    return out[(..., *[slice(0, s) for s in sizes])]


def slicewise_logits(
    net: torch.nn.Module, x: torch.Tensor, axis: int, batch_size: int = 16
) -> torch.Tensor:
    """A 2D network's logits over volumes ``(B, C, X, Y, Z)``, slice by slice across
    ``axis``, each batch of slices padded as :func:`pad_predict` does."""
    return slicewise(lambda s: pad_predict(net, s), x, axis, batch_size)
