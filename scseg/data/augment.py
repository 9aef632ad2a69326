"""Intensity augmentation of training patches and slices, by name, from MONAI transforms.

* ``"light"``: a random scale and shift of the intensities (x(1 +- 0.1), +-0.1, each with
  probability 0.5), scseg's first default;
* ``"nnunet"``: nnU-Net v2's set (``nnUNetTrainer.get_training_transforms``), at its
  probabilities: Gaussian noise (variance up to 0.1; MONAI draws the standard deviation
  up to its square root), p 0.1; Gaussian blur (sigma 0.5 to 1 per axis), p 0.2 x 0.5
  (nnU-Net's per-channel chance, here for all channels at once); multiplicative brightness
  x0.75 to x1.25, p 0.15; contrast x0.75 to x1.25 about the mean within the original range,
  p 0.15; simulated low resolution (down by 0.5 to 1, nearest; back up, linear),
  p 0.25 x 0.5; gamma 0.7 to 1.5 on the inverted image, p 0.1, and on the image, p 0.3, both
  keeping mean and standard deviation;
* ``"none"``.

Each acts on the image key alone: the label map is never touched.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from monai import transforms as T
from monai.data.meta_obj import get_track_meta, set_track_meta
from monai.transforms.traits import RandomizableTrait

INTENSITY_AUGMENTATIONS = ("light", "nnunet", "none")
# where the patches that are not centred on foreground are centred (patch_crop)
REST_CENTRES = ("background", "anywhere")


class _UntrackedStart(T.Transform, RandomizableTrait):
    """Turns MONAI's metadata tracking off for the transforms after it, in this process,
    and remembers what it was. A :class:`RandomizableTrait`, never ``Randomizable``: a
    ``CacheDataset`` runs it on every visit instead of caching it, and ``Compose`` draws no
    seed for it, so the random transforms after it draw what they drew without it."""

    previous = True

    def __call__(self, data):
        self.previous = get_track_meta()
        set_track_meta(False)
        return data


class _UntrackedEnd(T.Transform, RandomizableTrait):
    """Turns MONAI's metadata tracking back to what it was before ``start``."""

    def __init__(self, start: _UntrackedStart) -> None:
        self.start = start

    def __call__(self, data):
        set_track_meta(self.start.previous)
        return data


def untracked(transforms: list) -> list:
    """``transforms`` run on plain tensors: with metadata tracking on (MONAI's default),
    each random transform would wrap its output in a ``MetaTensor`` that records every
    operation, and the batch would reach the network as one, every op of the forward pass
    and the loss then going through ``MetaTensor.__torch_function__``. Training patches
    need no geometry record (prediction keeps its own). The same draws, the same values."""
    start = _UntrackedStart()
    return [start, *transforms, _UntrackedEnd(start)]


def intensity_augmentation_check(kind: str) -> None:
    """Raises ``ValueError`` for an unknown intensity augmentation name."""
    if kind not in INTENSITY_AUGMENTATIONS:
        raise ValueError(
            f"intensity_augmentation must be one of {', '.join(INTENSITY_AUGMENTATIONS)}, "
            f"got {kind!r}"
        )


def intensity_augmentation(
    key: str, kind: str, spatial_dims: int, probability: float = 1.0
) -> list:
    """The transforms of ``kind`` for ``key``, each chance times ``probability`` (at most 1).

    Raises:
        ValueError: an unknown ``kind``.
    """
    intensity_augmentation_check(kind)

    def p(chance: float) -> float:
        return min(1.0, chance * probability)

    if kind == "none":
        return []
    if kind == "light":
        return [
            T.RandScaleIntensityd(key, factors=0.1, prob=p(0.5)),
            T.RandShiftIntensityd(key, offsets=0.1, prob=p(0.5)),
        ]
    sigma = (0.5, 1.0)
    return [
        T.RandGaussianNoised(key, prob=p(0.1), mean=0.0, std=0.1**0.5),
        T.RandGaussianSmoothd(key, sigma_x=sigma, sigma_y=sigma, sigma_z=sigma, prob=p(0.1)),
        T.RandScaleIntensityd(key, factors=0.25, prob=p(0.15)),
        T.RandScaleIntensityFixedMeand(
            key, factors=0.25, fixed_mean=True, preserve_range=True, prob=p(0.15)
        ),
        T.RandSimulateLowResolutiond(
            key,
            prob=p(0.125),
            downsample_mode="nearest",
            upsample_mode="trilinear" if spatial_dims == 3 else "bilinear",
            zoom_range=(0.5, 1.0),
        ),
        T.RandAdjustContrastd(
            key, gamma=(0.7, 1.5), invert_image=True, retain_stats=True, prob=p(0.1)
        ),
        T.RandAdjustContrastd(
            key, gamma=(0.7, 1.5), invert_image=False, retain_stats=True, prob=p(0.3)
        ),
    ]


def rest_centres_check(rest: str) -> None:
    """Raises ``ValueError`` for an unknown ``rest_centres`` name (:func:`patch_crop`)."""
    if rest not in REST_CENTRES:
        raise ValueError(f"rest_centres must be one of {REST_CENTRES}, got {rest!r}")


def patch_crop(
    keys: Sequence[str],
    region: Sequence[int],
    ratio: float,
    samples: int,
    rest: str = "background",
    ignore_index: int | None = None,
    classes: int = 2,
):
    """``samples`` patches of ``region`` from a volume: a share ``ratio`` centred on a
    foreground voxel; the rest centred on a background voxel (``rest="background"``:
    MONAI's positive/negative sampling) or anywhere (``"anywhere"``: a random crop, as
    nnU-Net's patches that are not oversampled; the choice is made per volume, with
    probability ``ratio``, for all its patches). With ``ignore_index`` the labels are
    encoded (0: not annotated), and centres are never unannotated voxels unless a volume
    has no annotation at all."""
    rest_centres_check(rest)

    def centred(foreground: float):
        if ignore_index is None:
            return T.RandCropByPosNegLabeld(keys, "label", region, foreground, 1.0 - foreground,
                                            num_samples=samples)  # fmt: skip
        share = [foreground / (classes - 1)] * (classes - 1)  # MONAI needs some unannotated
        return T.RandCropByLabelClassesd(keys, "label", region, [1e-9, 1.0 - foreground, *share],
                                         num_classes=classes + 1, num_samples=samples,
                                         warn=False)  # fmt: skip

    if rest == "background" or ratio == 1.0:
        return centred(ratio)
    anywhere = T.RandSpatialCropSamplesd(keys, region, samples, random_size=False)
    return anywhere if ratio == 0.0 else T.OneOf([centred(1.0), anywhere], [ratio, 1 - ratio])


def patch_turns(
    keys: Sequence[str], rotation: Sequence[float], zoom: Sequence[float], prob: float
) -> list:
    """Random rotation (radians about axes 0, 1, 2) and zoom of a 3D patch, each with
    ``prob``; both keep the patch's shape, so non-cubic patches still batch. The zoom is
    left out when its range is (1, 1), which keeps the random stream of configs without
    it unchanged."""
    (ax0, ax1, ax2), (low, high) = rotation, zoom
    # MONAI's range_x turns about axis 0, range_y about axis 1, range_z about axis 2.
    turn = T.RandRotated(
        keys,
        range_x=ax0,
        range_y=ax1,
        range_z=ax2,
        prob=prob,
        mode=("bilinear",) + ("nearest",) * (len(keys) - 1),
        padding_mode="zeros",
    )
    if (low, high) == (1.0, 1.0):
        return [turn]
    zoom_ = T.RandZoomd(
        keys,
        prob=prob,
        min_zoom=low,
        max_zoom=high,
        keep_size=True,
        mode=("trilinear",) + ("nearest-exact",) * (len(keys) - 1),  # "nearest": half a voxel off
        padding_mode="constant",
    )
    return [turn, zoom_]


def transform_region(
    patch: Sequence[int], rotation: Sequence[float], min_zoom: float, steps: int = 13
) -> list[int]:
    """The region around a patch that still fills it after any turn within ``rotation``
    (radians, about each axis) and any zoom down to ``max(min_zoom, 0.85)``: the bounding
    box of the turned patch over a grid of ``steps`` angles per axis (widened by what the
    grid's gaps can miss), divided by that zoom. As nnU-Net's ``get_patch_size``, zooms
    below 0.85 (content shrunk further) may still show a border: covering them all would
    more than double the region.

    Returns:
        the region's size, at least the patch's, per axis.
    """
    dims = len(patch)
    half = np.asarray(patch, float) / 2
    corners = np.array(list(itertools.product(*[(-h, h) for h in half])))
    turned = list(rotation[:1] if dims == 2 else rotation)
    angles = [np.linspace(-a, a, steps) if a > 0 else np.zeros(1) for a in turned]
    extent = 2 * half
    for turn in itertools.product(*angles):
        rotated = corners @ rotation_matrix(turn, dims).T
        extent = np.maximum(extent, 2 * np.abs(rotated).max(0))
    gap = max(turned, default=0.0) / (steps - 1)  # half the grid's step
    grown = extent > 2 * half + 1e-9
    extent[grown] /= math.cos(gap)
    extent /= min(1.0, max(min_zoom, 0.85))
    return [max(int(p), math.ceil(e - 1e-6)) for p, e in zip(patch, extent, strict=True)]


def rotation_matrix(angles: Sequence[float], dims: int) -> np.ndarray:
    """A turn by ``angles`` (radians): one in 2D; in 3D about axes 0, 1 and 2, in turn."""
    if dims == 2:
        c, s = math.cos(angles[0]), math.sin(angles[0])
        return np.array([[c, -s], [s, c]])
    matrix = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = math.cos(angle), math.sin(angle)
        i, j = [a for a in range(3) if a != axis]
        turn = np.eye(3)
        turn[i, i], turn[i, j], turn[j, i], turn[j, j] = c, -s, s, c
        matrix = turn @ matrix
    return matrix
