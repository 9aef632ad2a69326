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

from scseg.inference.argmax import running_argmax
from scseg.inference.checkpoint import LoadedModel
from scseg.inference.inversion import (
    CLASS_POINT_ELEMENTS,
    UNSETTLED_SHARE,
    AxisResampler,
    checked_resampler,
    resampled_chunks,
)
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
