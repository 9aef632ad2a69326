"""Prediction for a model that refines a registered atlas, at the input's own resolution.

A :class:`scseg.atlas.model.LabelPrior` adds a correction to its prior's logits
(``strength`` x one-hot of the registered atlas's labels). Predicted whole at the training
spacing and mapped back, the prior would pass through that grid twice, down with the input
and back with the result: at 2 mm on 1 mm brains that alone costs a deformable registration
about 0.02 mean Dice. Here only the network's correction is predicted at the training
spacing (sliding windows over the image and the prior there, as in training); it is mapped
back to the input's grid a few classes at a time and added there to the prior registered on
that grid. An untrained model, whose heads are zero, predicts the registration exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch
from monai import transforms as T
from monai.data import MetaTensor

from scseg.inference import inversion
from scseg.inference.argmax import running_argmax
from scseg.inference.checkpoint import LoadedModel
from scseg.inference.inversion import inverted_chunks
from scseg.models.slabs import sliding_window_slabs, window_batch_size


def correction_logits(
    model: LoadedModel,
    x: torch.Tensor,
    roi_size: Sequence[int],
    overlap: float = 0.5,
    sw_batch_size: int = 4,
    tta: bool = False,
) -> torch.Tensor:
    """The correction ``(classes, *spatial)`` that ``model`` adds to the prior of ``x``
    ``(C_in + 1, *spatial)`` (image channels, then the prior's labels, at the training
    spacing): Gaussian-blended sliding windows, averaged over the mirrors of training when
    ``tta``; float32 on the CPU."""
    net = model.net
    if not hasattr(net, "correction"):
        raise ValueError("not an atlas-prior model: its network has no correction")
    x = x[None].float().to(model.device)
    windows = window_batch_size(sw_batch_size, model.classes, roi_size)
    flips = model.flips(x.ndim, tta)
    total = torch.zeros((1, model.classes, *x.shape[2:]), device=x.device)
    with torch.inference_mode(), model.autocast():
        for dims in flips:
            out = torch.zeros_like(total) if dims else total  # the first pass is unmirrored
            xi = torch.flip(x, dims) if dims else x
            for _ in sliding_window_slabs(xi, roi_size, windows, net.correction, overlap, out=out):
                pass  # each slab is final in ``out`` when yielded
            if dims:
                total += torch.flip(out, dims)
        if len(flips) > 1:
            total.div_(len(flips))
    return total[0].cpu()


def corrections_and_inversion(
    model: LoadedModel, x: torch.Tensor, data: dict, roi_size, overlap, sw_batch_size, tta
) -> tuple[torch.Tensor, Callable]:
    """For :func:`scseg.inference.volume.predict_volume`: the correction of ``x`` (as
    :func:`correction_logits`) and how to map it back: :func:`invert_with_prior` with the
    prior registered on the input's grid (``data["prior_input"]``)."""
    corrections = correction_logits(model, x, roi_size, overlap, sw_batch_size, tta)
    prior = PriorLogits(data["prior_input"], model.net.strength.item(), model.classes)
    return corrections, partial(invert_with_prior, prior=prior)


class PriorLogits:
    """``strength`` x one-hot of a label map, added to one class's logits at a time: each
    class's voxels are found once (one sort), not by comparing the whole volume per class."""

    def __init__(self, labels: np.ndarray, strength: float, classes: int) -> None:
        flat = torch.from_numpy(np.asarray(labels).astype(np.int64).ravel()).clamp_(0, classes - 1)
        self.labels = flat
        self.order = torch.argsort(flat, stable=True)
        counts = torch.bincount(flat, minlength=classes)
        self.bounds = [0, *counts.cumsum(0).tolist()]
        self.strength = float(strength)

    def add_(self, cls: int, values: torch.Tensor) -> torch.Tensor:
        """``values`` (class ``cls``'s logits on the label map's grid) plus the prior, in place."""
        voxels = self.order[self.bounds[cls] : self.bounds[cls + 1]]
        values.view(-1)[voxels] += self.strength
        return values


def invert_with_prior(
    pre: T.Compose,
    image: MetaTensor,
    corrections: torch.Tensor,
    shape: tuple[int, ...],
    keep: bool = False,
    sink: Callable[[np.ndarray], None] | None = None,
    *,
    prior: PriorLogits,
) -> tuple[np.ndarray, np.ndarray | None]:
    """As :func:`scseg.inference.volume._invert_argmax`, for corrections ``(C, *preprocessed)``:
    each class's correction is mapped back to the input grid (linear) and the prior's logits
    are added there before the running argmax. Probabilities (``keep`` or ``sink``) are the
    softmax of those sums: a log-sum-exp kept with the argmax, then a second pass over the
    classes (twice the resampling, only when they are asked for). Labels alone are found,
    the same, where a correction could overturn the prior only (:func:`prior_argmax`)."""
    resample = checked_resampler(pre, image, shape)  # once, for both passes
    softmax = keep or sink is not None
    if resample is not None and not softmax:
        labels = prior_argmax(corrections, resample, prior, shape)
        if labels is not None:
            return labels, None

    def summed():
        for start, chunk in resampled_chunks(pre, image, corrections, shape, resample):
            if tuple(chunk.shape[1:]) == shape:
                for offset, values in enumerate(chunk):
                    prior.add_(start + offset, values)
            yield start, chunk
            del chunk  # before the next chunk is made

    labels, log_total = running_argmax(summed(), shape, len(corrections), softmax)
    if log_total is None:
        return labels, None
    full = np.empty((*shape, len(corrections)), np.float32) if keep else None
    for start, chunk in summed():
        chunk.sub_(log_total).exp_()
        if sink is not None:
            sink(chunk.numpy())
        if keep:
            full[..., start : start + chunk.shape[0]] = np.moveaxis(chunk.numpy(), 0, -1)
    return labels, full


SETTLED_MARGIN = 1e-3  # logits: far above float32 rounding in a few lerps and one addition
UNSETTLED_SHARE = 0.25  # past this share of voxels, every class is mapped back whole


def prior_argmax(
    corrections: torch.Tensor, resample: AxisResampler, prior: PriorLogits, shape
) -> np.ndarray | None:
    """The label map that :func:`invert_with_prior` finds by mapping every class back, found
    by mapping back only where a correction could overturn the prior; ``None`` where that is
    most voxels (then the whole mapping is as fast).

    A voxel's mapped-back correction of any class is a convex combination of the corrections
    at the 2 x 2 x 2 coarse voxels around it (linear resampling), so it is at most the
    largest correction of any class within one coarse voxel of them. Where the prior's own
    class's correction, mapped back at that voxel, plus ``strength`` exceeds that bound (by
    a margin for rounding), the prior's class wins: the voxel keeps the prior's label.
    Elsewhere every class is interpolated at that voxel alone, with the same operations as
    :class:`AxisResampler`, and the prior added as :class:`PriorLogits` does: the same sums,
    the same argmax (ties to the lower class)."""
    pool = partial(torch.nn.functional.max_pool3d, kernel_size=3, stride=1, padding=1)
    bound = resample(pool(corrections.amax(0)[None, None])[0])[0]
    given = prior.labels.view(shape)
    unsettled = torch.nonzero(
        bound.sub_(resample.at_labels(corrections, given)) >= prior.strength - SETTLED_MARGIN
    )
    if len(unsettled) > UNSETTLED_SHARE * bound.numel():
        return None
    labels = given.to(torch.int16 if len(corrections) < 1 << 15 else torch.int32)
    for points in torch.split(unsettled, max(1, CLASS_POINT_ELEMENTS // len(corrections))):
        values = resample.at(corrections, points)  # (classes, points)
        at = tuple(points.T)
        values[given[at], torch.arange(len(points))] += prior.strength
        labels[at] = values.argmax(0).to(labels.dtype)
    return labels.numpy()


CLASS_POINT_ELEMENTS = 1 << 23  # classes x voxels interpolated at a time (x 8 corners)


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
        """``values`` ``(k, *source)`` on the target grid ``(k, *target)``."""
        out = values.permute(0, *[1 + s for s in self.axes])
        for t, (low, high, weight) in enumerate(self.steps):
            shape = [1] * out.ndim
            shape[t + 1] = -1
            w = weight.view(shape)
            out = torch.lerp(out.index_select(t + 1, low), out.index_select(t + 1, high), w)
        return out

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
    :func:`scseg.inference.inversion.inverted_chunks` gives them, by ``resample`` (from
    :func:`checked_resampler`) in a fifth of the time; by MONAI's inversion where it is
    ``None`` (no resampler passed the check)."""
    if resample is None:
        yield from inverted_chunks(pre, image, values, shape)
        return
    step = max(1, inversion.CLASS_CHUNK_ELEMENTS // max(1, int(np.prod(shape))))
    for start in range(0, values.shape[0], step):
        yield start, resample(values[start : start + step]).contiguous()


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
