"""Network outputs at the training grid mapped back onto the input's grid, a few channels
at a time, for the plain, region and atlas-prior paths of 3D prediction alike: by MONAI's
inversion of the preprocessing (:func:`inverted_chunks`), or, where the two grids are
aligned axis by axis and a check on ramps shows it maps as MONAI does, by a separable
resampler (:class:`AxisResampler`) that costs a fifth of it (:func:`resampled_chunks`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from monai import transforms as T
from monai.data import MetaTensor

# classes x input voxels resampled at a time (float32: 64 MiB, two classes of a 1 mm brain),
# so the inversion's memory does not grow with the number of classes
CLASS_CHUNK_ELEMENTS = 1 << 24
CLASS_POINT_ELEMENTS = 1 << 23  # classes x voxels interpolated at a time (x 8 corners)
UNSETTLED_SHARE = 0.25  # past this share of voxels, every class is mapped back whole
# probabilities: far above float32 rounding in a few lerps
PROBABILITY_MARGIN = 1e-5
ARGMAX_TILE_ROWS = 16  # target rows (axis 0) per tile of AxisResampler.argmax: ~2.5 MiB a
# channel at 1 mm


def inverted_chunks(pre: T.Compose, image: MetaTensor, probs: torch.Tensor, shape):
    """``(start, chunk)``: channels ``start..`` of ``probs`` ``(C, *preprocessed)`` mapped
    back to the input grid (MONAI ``Invertd``, float32 ``(k, *input)``), a few channels at
    a time so that memory does not grow with the number of channels. Resampling is per
    channel, so each chunk equals that part of inverting all channels at once."""
    step = _classes_per_chunk(shape)
    invert = T.Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False)
    for start in range(0, probs.shape[0], step):
        part = MetaTensor(probs[start : start + step], meta=dict(image.meta))
        chunk = invert({"image": image, "pred": part})["pred"]
        yield start, (chunk.as_tensor() if isinstance(chunk, MetaTensor) else chunk).float()


def _classes_per_chunk(shape) -> int:
    """Classes mapped back at a time onto an input grid of ``shape``
    (:data:`CLASS_CHUNK_ELEMENTS`)."""
    return max(1, CLASS_CHUNK_ELEMENTS // max(1, int(np.prod(shape))))


class AxisResampler:
    """Linear resampling from one voxel grid to another whose axes it only permutes, flips
    and scales, as the preprocessing's orientation and spacing do (a map of voxels to voxels
    through the world: ``inv(source_affine) @ target_affine``). Separable, so one class
    costs three gathers, not a grid of every target voxel's coordinates; values beyond the
    source repeat its border (MONAI's ``border`` padding)."""

    def __init__(self, source_affine, source_shape, target_affine, target_shape) -> None:
        voxels = np.linalg.inv(np.asarray(source_affine, float)) @ np.asarray(target_affine, float)
        linear = voxels[:3, :3]
        self.axes = [int(np.argmax(np.abs(linear[:, t]))) for t in range(3)]
        off = linear.copy()
        off[self.axes, range(3)] = 0
        if sorted(self.axes) != [0, 1, 2] or np.abs(off).max() > 1e-4 * np.abs(linear).max():
            raise ValueError("the grids are not aligned axis by axis")
        self.steps = []
        for t, s in enumerate(self.axes):
            size = int(source_shape[s])
            at = linear[s, t] * np.arange(int(target_shape[t])) + voxels[s, 3]
            at = np.clip(at, 0, size - 1)
            low = np.clip(np.floor(at), 0, max(size - 2, 0)).astype(np.int64)
            weight = torch.from_numpy((at - low).astype(np.float32))
            high = np.minimum(low + 1, size - 1)
            self.steps.append((torch.from_numpy(low), torch.from_numpy(high), weight))

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` ``(k, *source)`` on the target grid ``(k, *target)``, one channel at a
        time into the result: the temporaries are a few volumes of one channel, not of
        ``k``."""
        target = [len(low) for low, _, _ in self.steps]
        out = torch.empty((values.shape[0], *target), dtype=values.dtype)
        for c in range(values.shape[0]):
            out[c] = self._one(values[c : c + 1])[0]
        return out

    def argmax(self, values: torch.Tensor) -> torch.Tensor:
        """The argmax over channels (ties to the lower) of ``self(values)``, ``values``
        ``(C, *source)``: ``(*target)``, int16 (int32 past 32767 channels). Bit for bit the
        same values, computed a tile of :data:`ARGMAX_TILE_ROWS` target rows at a time for
        every channel, so that what each channel's lerps and comparisons touch stays in the
        cache: half the time of mapping whole channels back and reducing them."""
        from scseg.inference.argmax import running_argmax

        target = [len(low) for low, _, _ in self.steps]
        labels = torch.empty(target, dtype=torch.int16 if len(values) < 1 << 15 else torch.int32)
        (low, high, weight), rest = self.steps[0], self.steps[1:]
        source = values.permute(0, *[1 + s for s in self.axes])
        for start in range(0, target[0], ARGMAX_TILE_ROWS):
            rows = slice(start, start + ARGMAX_TILE_ROWS)
            first, last = int(low[rows].min()), int(high[rows].max()) + 1
            steps = [(low[rows] - first, high[rows] - first, weight[rows]), *rest]
            mapped = ((c, _lerps(source[c, first:last].contiguous(), steps)[None])
                      for c in range(len(values)))  # fmt: skip
            tile, _ = running_argmax(mapped, (len(low[rows]), *target[1:]), len(values))
            labels[rows] = torch.from_numpy(tile)
        return labels

    def cells(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` ``(k, *source)`` at the source cell that each target voxel is
        interpolated in (its lower corner along every axis): ``(k, *target)``."""
        out = values.permute(0, *[1 + s for s in self.axes]).contiguous()
        for t, (low, _, _) in enumerate(self.steps):  # leading axis: see _lerps
            out = out.movedim(t + 1, 0).index_select(0, low).movedim(0, t + 1)
        return out

    def _one(self, values: torch.Tensor) -> torch.Tensor:
        return _lerps(values[0].permute(*self.axes).contiguous(), self.steps)[None]

    def at(self, values: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """``values`` ``(k, *source)`` at target voxels ``points`` ``(n, 3)``: ``(k, n)``,
        each the same float32 operations as :meth:`__call__` gives that voxel."""
        picked = [tuple(step[points[:, t]] for step in steps) for t, steps in enumerate(self.steps)]

        def corner(*which: int) -> torch.Tensor:
            source = [None] * 3
            for t, w in enumerate(which):
                source[self.axes[t]] = picked[t][w]
            return values[:, source[0], source[1], source[2]]

        return _trilinear(corner, [step[2] for step in picked])

    def at_labels(self, values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Each target voxel's own channel of ``values`` ``(k, *source)``, the channel
        ``labels`` ``(*target)`` names there, interpolated as :meth:`__call__` would:
        ``(*target)``."""
        source = values.shape[1:]
        strides = [int(np.prod(source[a + 1 :])) for a in range(3)]
        base = labels.to(torch.int64) * int(np.prod(source))
        flat = values.reshape(-1)

        def along(t: int, step: torch.Tensor) -> torch.Tensor:  # broadcast on target axis t
            return step.view([-1 if u == t else 1 for u in range(3)])

        def corner(*which: int) -> torch.Tensor:
            offsets = [
                along(t, self.steps[t][w] * strides[self.axes[t]]) for t, w in enumerate(which)
            ]
            return flat[base + offsets[0] + offsets[1] + offsets[2]]

        return _trilinear(corner, [along(t, step[2]) for t, step in enumerate(self.steps)])


def _lerps(out: torch.Tensor, steps) -> torch.Tensor:
    """``out`` (a contiguous volume, its axes in target order) resampled along target axis 0,
    then 1, then 2 by ``steps`` (``(low, high, weight)`` each). Each axis is the leading one
    while it is resampled: ``index_select`` then copies whole slabs, four times faster than
    picking along an inner axis, with the same gathers and lerps."""
    for t, (low, high, weight) in enumerate(steps):
        out = out.movedim(t, 0)
        w = weight.view([-1] + [1] * (out.ndim - 1))
        out = out.index_select(0, low).lerp_(out.index_select(0, high), w).movedim(0, t)
    return out


def _trilinear(
    corner: Callable[..., torch.Tensor], weights: Sequence[torch.Tensor]
) -> torch.Tensor:
    """:meth:`AxisResampler.__call__`'s lerps, along target axis 0, then 1, then 2, of
    ``corner(a, b, c)`` (0: the lower, 1: the upper source voxel along target axes 0, 1, 2)."""
    along0 = [[torch.lerp(corner(0, b, c), corner(1, b, c), weights[0]) for c in (0, 1)]
              for b in (0, 1)]  # fmt: skip
    along1 = [torch.lerp(along0[0][c], along0[1][c], weights[1]) for c in (0, 1)]
    return torch.lerp(along1[0], along1[1], weights[2])


def resampled_chunks(pre: T.Compose, image: MetaTensor, values: torch.Tensor, shape,
                     resample: AxisResampler | None):  # fmt: skip
    """``(start, chunk)``: channels ``start..`` of ``values`` ``(C, *preprocessed)`` on the
    input grid ``shape`` (float32 ``(k, *input)``), as
    :func:`inverted_chunks` gives them, by ``resample`` (from
    :func:`checked_resampler`) in a fifth of the time; by MONAI's inversion where it is
    ``None`` (no resampler passed the check)."""
    if resample is None:
        yield from inverted_chunks(pre, image, values, shape)
        return
    step = _classes_per_chunk(shape)
    for start in range(0, values.shape[0], step):
        yield start, resample(values[start : start + step])


def checked_resampler(pre: T.Compose, image: MetaTensor, shape) -> AxisResampler | None:
    """An :class:`AxisResampler` from ``image``'s preprocessed grid to the input grid
    ``shape``, between the grids that MONAI's inversion of the preprocessing reports, if it
    maps a ramp along each axis as that inversion does (to 1e-3 of a voxel, borders
    included); ``None`` otherwise."""
    spatial = tuple(image.shape[1:])
    axes = [torch.arange(n, dtype=torch.float32) for n in spatial]
    ramps = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    invert = T.Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False)
    found = invert({"image": image, "pred": MetaTensor(ramps, meta=dict(image.meta))})["pred"]
    try:
        resample = AxisResampler(image.affine, spatial, found.affine, shape)
    except ValueError:
        return None
    ours, theirs = resample(ramps), found.as_tensor().float()
    if ours.shape != theirs.shape or float((ours - theirs).abs().max()) > 1e-3:
        return None
    return resample


def settled_argmax(probs: torch.Tensor, resample: AxisResampler, shape) -> np.ndarray | None:
    """The label map of mapping every class of ``probs`` ``(C, *preprocessed)`` back by
    ``resample`` and taking the argmax (ties to the lower class), found by mapping back
    every class only where the label could change; ``None`` where that is most voxels.

    A voxel's mapped-back probabilities are a convex combination of those at the corners of
    the coarse cell around it (2 x 2 x 2 voxels). Where all corners share one most likely
    class ``L``, no other class exceeds the largest second-best among them; where ``L``'s
    own mapped-back probability (the same float32 operations as
    :meth:`AxisResampler.__call__`) beats that by a margin, ``L`` is the label. Elsewhere
    every class is interpolated at that voxel alone, as ``__call__`` would."""
    best = probs.topk(2, dim=0)
    label = best.indices[0].to(torch.float32)[None]
    spread = resample.cells(_cell_max(label) + _cell_max(-label))[0]
    if int(torch.count_nonzero(spread)) > UNSETTLED_SHARE * spread.numel():
        return None  # unsettled below holds at least these: decided before the costly part
    bound = resample.cells(_cell_max(best.values[1][None]))[0]
    candidate = resample.cells(label)[0].to(torch.int64)  # one corner's: where spread is 0, all
    del best, label
    own = resample.at_labels(probs, candidate)
    unsettled = torch.nonzero((spread != 0) | (own - bound <= PROBABILITY_MARGIN))
    del spread, bound, own
    if len(unsettled) > UNSETTLED_SHARE * candidate.numel():
        return None
    labels = candidate.to(torch.int16 if len(probs) < 1 << 15 else torch.int32)
    for points in torch.split(unsettled, max(1, CLASS_POINT_ELEMENTS // len(probs))):
        labels[tuple(points.T)] = resample.at(probs, points).argmax(0).to(labels.dtype)
    return labels.numpy()


def _cell_max(values: torch.Tensor) -> torch.Tensor:
    """``values`` ``(1, *grid)``: at each voxel the maximum over the 2 x 2 x 2 cell it starts
    (the last voxel of an axis repeats: a cell there has one voxel along it)."""
    padded = torch.nn.functional.pad(values[None], (0, 1, 0, 1, 0, 1), mode="replicate")
    return torch.nn.functional.max_pool3d(padded, kernel_size=2, stride=1)[0]
