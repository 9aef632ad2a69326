"""Whole-volume logits as a stream of slabs, so that what is kept grows with one slab of
classes x voxels, not with the whole volume.

A *slab stream* yields ``(axis, start, stop, logits)``: the final logits ``(B, C, ...)`` of
``start:stop`` along spatial ``axis`` (0-based), in order, covering the volume once.
Whoever consumes it (softmax into a probability volume, argmax into a label map, a loss's
running sums) keeps what it needs of each slab and drops the rest.

:func:`sliding_window_slabs` is MONAI's Gaussian-blended ``sliding_window_inference``
(same windows, order, weights and arithmetic, so the same values bit for bit) with its
output buffer cut into slabs along the first spatial axis: a slab is final once every
window reaching it has run, and leaves memory then. :func:`slicewise_slabs` streams a 2D
network over the slices of a volume (QuickNAT's and the scSE paper's setting), and
:func:`pad_predict` runs a 2D network at any size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from monai.data.utils import compute_importance_map, dense_patch_slices
from monai.inferers.utils import _get_scan_interval

Slab = tuple[int, int, int, torch.Tensor]
SlabStream = Iterator[Slab]
# One batch of window outputs (float32) may take this much: at 137 classes one 64^3
# window's logits are 137 MiB, and the network holds two or three such tensors at its head.
WINDOW_BATCH_BYTES = 256 << 20


def window_batch_size(requested: int, classes: int, roi_size: Sequence[int]) -> int:
    """``requested``, lowered so that one batch of window logits stays within
    :data:`WINDOW_BATCH_BYTES` (at least 1): with many classes the windows' outputs, not
    the volume, set the peak."""
    per_window = 4 * classes * math.prod(int(r) for r in roi_size)
    return max(1, min(int(requested), WINDOW_BATCH_BYTES // max(1, per_window)))


def sliding_window_slabs(
    x: torch.Tensor,
    roi_size: Sequence[int],
    sw_batch_size: int,
    predictor: Callable[[torch.Tensor], torch.Tensor],
    overlap: float = 0.5,
    mode: str = "gaussian",
    out: torch.Tensor | None = None,
) -> SlabStream:
    """Sliding-window logits of ``x`` ``(B, C_in, *spatial)``, slab by slab along axis 0.

    Equals ``monai.inferers.sliding_window_inference(x, roi_size, sw_batch_size, predictor,
    overlap, mode)`` (constant padding where the volume is smaller than a window), one
    image of the batch at a time. Memory: the output of the windows overlapping the
    current slab (about ``C x (roi + step) x Y x Z``), and one weight map ``Y x Z`` wide;
    or, given ``out``, nothing beyond it.

    Args:
        out: ``(B, C, *spatial)`` zeros, in ``x``'s dtype and device, to accumulate into:
            each slab is then a view of ``out``, final when yielded and free to change in
            place (softmax into probabilities without a second volume).

    Yields:
        ``(0, start, stop, logits)``, ``logits`` ``(1, C, stop - start, *spatial[1:])`` for
        each image in turn when ``B > 1`` (axis 0 restarts at 0).
    """
    dims = x.ndim - 2
    roi = [int(r) for r in roi_size]
    if len(roi) != dims:
        raise ValueError(f"roi_size {tuple(roi)} does not fit input shape {tuple(x.shape)}")
    for b in range(x.shape[0]):
        target = None if out is None else out[b : b + 1]
        yield from _image_slabs(x[b : b + 1], roi, sw_batch_size, predictor, overlap, mode, target)


def _image_slabs(
    x: torch.Tensor,
    roi: list[int],
    sw_batch_size: int,
    predictor: Callable[[torch.Tensor], torch.Tensor],
    overlap: float,
    mode: str,
    out: torch.Tensor | None,
) -> SlabStream:
    dims = x.ndim - 2
    original = list(x.shape[2:])
    # As MONAI: pad (constant 0, split evenly) where the image is smaller than a window.
    pad = []
    for k in range(dims - 1, -1, -1):
        diff = max(roi[k] - original[k], 0)
        pad += [diff // 2, diff - diff // 2]
    if any(pad):
        x = F.pad(x, pad)
    size = list(x.shape[2:])
    lead = [pad[2 * (dims - 1 - d)] for d in range(dims)]  # padding before each axis
    interval = _get_scan_interval(size, roi, dims, (overlap,) * dims)
    windows = dense_patch_slices(size, roi, interval)  # axis 0 varies slowest
    weight = compute_importance_map(tuple(roi), mode, device=x.device, dtype=x.dtype)[None, None]
    # The count map is C times smaller than the output: built whole, in MONAI's order.
    count = torch.zeros([1, 1, *size], dtype=x.dtype, device=x.device)
    for window in windows:
        count[(slice(None), slice(None), *window)] += weight
    starts = [w[0].start for w in windows]
    # Accumulate into ``out`` itself when it covers the (unpadded) volume; else into a
    # buffer that holds axis-0 positions low .. low + depth and rolls forward.
    direct = out is not None and not any(pad)
    depth = size[0] if direct else _rolling_depth(starts, roi[0], sw_batch_size, size[0])
    buffer = out if direct else None
    low = 0
    for first in range(0, len(windows), sw_batch_size):
        batch = windows[first : first + sw_batch_size]
        logits = predictor(torch.cat([x[(slice(None), slice(None), *w)] for w in batch]))
        if tuple(logits.shape[2:]) != tuple(roi):
            raise ValueError(f"the network's output {tuple(logits.shape)} does not match roi {roi}")
        if buffer is None:
            buffer = torch.zeros([1, logits.shape[1], depth, *size[1:]], dtype=x.dtype,
                                 device=x.device)  # fmt: skip
        logits *= weight  # in place, in the network's dtype, as MONAI does
        offset = 0 if direct else low
        for window, patch in zip(batch, logits, strict=True):
            local = slice(window[0].start - offset, window[0].stop - offset)
            buffer[(slice(None), slice(None), local, *window[1:])] += patch
        # Positions below the next window's start are final.
        done = starts[first + len(batch)] if first + len(batch) < len(windows) else size[0]
        if done <= low:
            continue
        if direct:
            part = buffer[:, :, low:done]
            yield 0, low, done, part.div_(count[:, :, low:done])  # as MONAI's output /= count
        else:
            slab = _finish(buffer[:, :, : done - low], count, low, done, lead, original, out)
            if slab[2] > slab[1]:  # not all padding
                yield slab
            _roll(buffer, done - low)
        low = done


def _rolling_depth(starts: list[int], roi: int, sw_batch_size: int, size: int) -> int:
    """The most axis-0 positions held at once: from the first unfinished position to the
    end of the furthest window of a batch."""
    depth, low = 0, 0
    for first in range(0, len(starts), sw_batch_size):
        last = min(first + sw_batch_size, len(starts))
        depth = max(depth, max(starts[first:last]) + roi - low)
        low = max(low, starts[last] if last < len(starts) else size)
    return min(depth, size)


def _roll(buffer: torch.Tensor, shift: int) -> None:
    """Moves positions ``shift..`` of axis 2 to the front and zeroes the rest, in place
    (plane by plane in increasing order, so no plane is overwritten before it is read)."""
    depth = buffer.shape[2]
    for k in range(depth - shift):
        buffer[:, :, k].copy_(buffer[:, :, k + shift])
    buffer[:, :, max(depth - shift, 0) :].zero_()


def _finish(
    part: torch.Tensor,
    count: torch.Tensor,
    low: int,
    high: int,
    lead: list[int],
    original: list[int],
    out: torch.Tensor | None,
) -> Slab:
    """Divides a finished part by its weights and crops MONAI's padding away (into
    ``out`` when given)."""
    part = part / count[:, :, low:high]
    start = max(low - lead[0], 0)
    stop = min(high - lead[0], original[0])
    crop = [slice(start + lead[0] - low, stop + lead[0] - low)]
    crop += [slice(p, p + s) for p, s in zip(lead[1:], original[1:], strict=True)]
    part = part[(slice(None), slice(None), *crop)]
    if out is not None:
        part = out[:, :, start:stop].copy_(part)
    return 0, start, stop, part


def pad_predict(
    net: torch.nn.Module, x: torch.Tensor, least: Sequence[int] | None = None
) -> torch.Tensor:
    """Runs ``net`` on ``x`` zero-padded to the encoder's size divisor, cropped back.

    The divisor is ``net.size_divisor`` (our models), else the encoder's ``output_stride``
    (SMP's own models); none where the encoder says it takes any size.

    Args:
        least: the training patch: ``x`` is first padded to at least this size, and then
            to the divisor, both centred, so that an image smaller than the patch sits
            where training's padding put it (MONAI's ``SpatialPad``, albumentations'
            ``PadIfNeeded``, nnU-Net's ``pad_nd_image``). A strided encoder that only ever
            saw a small slice at one place in its patch may miss it elsewhere: the tumour
            sample's 38 x 102 breast slices, padded at the end, lost a tumour that centred
            they find (Dice 0 against 0.8). Without it, ``x`` is padded at the end, to the
            divisor only.
    """
    encoder = getattr(net, "encoder", None)
    if encoder is not None and not getattr(encoder, "requires_divisible_input", True):
        divisor = 1
    else:
        divisor = getattr(net, "size_divisor", None) or getattr(encoder, "output_stride", 1)
    sizes = x.shape[2:]
    wanted = [max(s, int(m)) for s, m in zip(sizes, least, strict=True)] if least else sizes
    pads = [w - s + (-w) % divisor for s, w in zip(sizes, wanted, strict=True)]
    if not any(pads):
        return net(x)
    before = [p // 2 for p in pads] if least else [0] * len(pads)
    flat = [q for p, b in zip(reversed(pads), reversed(before), strict=True) for q in (b, p - b)]
    out = net(F.pad(x, flat))
    return out[(..., *[slice(b, b + s) for b, s in zip(before, sizes, strict=True)])]


def slicewise_slabs(
    net: torch.nn.Module,
    x: torch.Tensor,
    axis: int,
    batch_size: int = 16,
    out: torch.Tensor | None = None,
    patch: Sequence[int] | None = None,
) -> SlabStream:
    """A 2D network's logits over one volume ``(1, C, X, Y, Z)``, ``batch_size`` slices
    across ``axis`` at a time, each batch padded as :func:`pad_predict` does.

    Args:
        out: ``(1, K, X, Y, Z)`` to write into: each slab is then a view of it.
        patch: the training patch; slices smaller than it are padded to it, centred, as
            in training (:func:`pad_predict`'s ``least``).

    Yields:
        ``(axis, start, stop, logits)``, ``logits`` ``(1, K, X, Y, Z)`` with
        ``stop - start`` along ``axis``.
    """
    if x.ndim != 5 or x.shape[0] != 1:
        raise ValueError(f"expected one volume (1, C, X, Y, Z), got shape {tuple(x.shape)}")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    slices = x[0].movedim(axis + 1, 0)  # (S, C, H, W), a view
    step = max(1, batch_size)
    for start in range(0, slices.shape[0], step):
        logits = pad_predict(net, slices[start : start + step], patch)
        logits = logits.movedim(0, axis + 1)[None]
        stop = start + logits.shape[axis + 2]
        if out is not None:
            index = [slice(None)] * 5
            index[axis + 2] = slice(start, stop)
            logits = out[tuple(index)].copy_(logits)
        yield axis, start, stop, logits


def whole(x: torch.Tensor) -> SlabStream:
    """A logits tensor as a stream of one slab."""
    yield 0, 0, x.shape[2], x


def gather(stream: SlabStream) -> torch.Tensor:
    """The full logits ``(B, C, *spatial)`` of a stream (what streams exist to avoid; for
    tests and small inputs). A slab starting at 0 again begins the next image."""
    images: list[list[torch.Tensor]] = []
    dim = 2
    for axis, start, _, part in stream:
        if start == 0:
            images.append([])
        images[-1].append(part)
        dim = axis + 2
    return torch.cat([torch.cat(parts, dim) for parts in images])
