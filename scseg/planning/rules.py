"""From a fingerprint and a memory budget to training settings, after nnU-Net v2's
``ExperimentPlanner`` (``nnunetv2/experiment_planning/experiment_planners/
default_experiment_planner.py``), each choice with the reason it was made.

Where ours differ, and why:

* **Pooling** is nnU-Net's (:func:`pooling`: an axis is not pooled, and its kernel is 1,
  while its spacing is over twice the finest), but stops at 6 stages, where nnU-Net has
  no limit.
* **Memory is estimated, not measured.** nnU-Net instantiates its network and sums its
  convolution outputs; we sum the same for our U-Net from its widths (two convolutions
  per encoder stage, upsampling, two convolutions and the attention gate per decoder
  block) and compare with nnU-Net's references (560e6 units for 8 GB at batch 2 in 3D,
  85e6 at batch 12 in 2D), doubled on a CPU, which trains in float32. The outputs count
  too, as nnU-Net counts its segmentation layers, but ours are all at the patch's
  resolution (deep-supervision heads are upsampled), so many classes shrink our patch
  more than nnU-Net's (137 classes at 2 GB: 48 x 56 x 48, nnU-Net 64 x 80 x 64).
* **CT normalisation** clips to the foreground's 0.5-99.5 percentiles, as nnU-Net, then
  scales to [0, 1] instead of a z-score with the foreground's mean and std. MR is z-scored
  over non-zero voxels per image.
* **Training length** is counted in steps (batches), 50 per epoch, where nnU-Net runs 1000
  epochs of 250; AdamW with a cosine schedule instead of SGD with a poly one.
* **On a CPU**, widths start at 16 instead of 32: compute, not memory, is the limit there.
* **Augmentation** in 3D takes nnU-Net's spatial settings (turns up to 30 degrees, or 180
  about the coarsest axis of a flat patch; zoom 0.7-1.4; each with probability 0.2; and
  mirroring), applied by MONAI to the cropped patch, where nnU-Net transforms a larger
  region and crops after, so our turned patches have zero-filled corners. For intensities
  we scale and shift at random; nnU-Net adds noise, blur, contrast, gamma and simulated low
  resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scseg.planning.fingerprint import Fingerprint

ANISOTROPY = 3.0  # nnU-Net's anisotropy_threshold
MIN_EDGE = 4  # nnU-Net's UNet_featuremap_min_edge_length
REFERENCE = {3: (560e6, 2), 2: (85e6, 12)}  # units at 8 GB, at this batch size
MAX_WIDTH = {3: 320, 2: 512}
MAX_STAGES = 6  # nnU-Net has no limit; more stages add little past a 4-voxel bottleneck
MAX_DATASET_COVERED = 0.05  # nnU-Net: a batch sees at most 5 % of the dataset's voxels
STEPS_PER_EPOCH = 50


@dataclass
class Plan:
    """Settings by config key (``model.lr``, ``data.init_args.spacing``, ...) and why."""

    values: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)
    summary: list[tuple[str, str]] = field(default_factory=list)  # for the printed table

    def set(self, key: str, value, reason: str | None = None) -> None:
        self.values[key] = value
        if reason:
            self.reasons[key] = reason


def target_spacing(fp: Fingerprint) -> tuple[np.ndarray, str]:
    """nnU-Net's ``determine_fullres_target_spacing``: the median spacing; where one axis
    is over 3x coarser than the others and has under a third of their voxels, its 10th
    percentile instead (but no finer than the other axes)."""
    spacings, shapes = fp.spacings, fp.shapes
    target = np.median(spacings, 0)
    sizes = np.median(shapes, 0)
    worst = int(np.argmax(target))
    others = [i for i in range(len(target)) if i != worst]
    if target[worst] > ANISOTROPY * max(target[others]) and sizes[worst] * ANISOTROPY < min(
        sizes[others]
    ):
        finer = max(float(np.percentile(spacings[:, worst], 10)), float(max(target[others])))
        target[worst] = finer
        return target, (
            f"median spacing, but axis {worst} is over {ANISOTROPY:g}x coarser "
            "with under a third of the voxels: its 10th percentile (nnU-Net)"
        )
    return target, "median spacing of the cases (nnU-Net)"


@dataclass
class Pooling:
    """nnU-Net's ``get_pool_and_conv_props`` for one patch: each stage's stride and kernel
    per axis (the first stage's stride is 1), and what the patch must be divisible by."""

    strides: list[tuple[int, ...]]
    kernels: list[tuple[int, ...]]
    divisor: np.ndarray

    @property
    def uniform(self) -> bool:
        """Every axis pooled at every stage, 3x3(x3) kernels: our ``unet``'s default."""
        return all(len(set(s)) == 1 for s in self.strides) and all(
            set(k) == {3} for k in self.kernels
        )


def pooling(spacing, patch, max_stages: int = MAX_STAGES) -> Pooling:
    """nnU-Net's ``get_pool_and_conv_props``: pool the axes whose feature map is at least
    ``2 * MIN_EDGE`` and whose spacing is under twice the finest of those (a lone axis
    only while at least ``3 * MIN_EDGE``); a kernel is 1 along an axis until its spacing
    comes within twice the finest, then 3; the bottleneck's is 3. Ours stops at
    ``max_stages`` stages (nnU-Net: no limit)."""
    dims = len(spacing)
    current, size = [float(s) for s in spacing], [float(s) for s in patch]
    strides, kernels, pools, kernel = [(1,) * dims], [], [0] * dims, [1] * dims
    while len(strides) < max_stages:
        valid = [i for i in range(dims) if size[i] >= 2 * MIN_EDGE]
        if not valid:
            break
        finest = min(current[i] for i in valid)
        valid = [i for i in valid if current[i] / finest < 2]
        if not valid or (len(valid) == 1 and size[valid[0]] < 3 * MIN_EDGE):
            break
        kernel = [3 if k == 3 or current[d] / min(current) < 2 else 1 for d, k in enumerate(kernel)]
        for i in valid:
            pools[i] += 1
            current[i] *= 2
            size[i] = math.ceil(size[i] / 2)
        strides.append(tuple(2 if i in valid else 1 for i in range(dims)))
        kernels.append(tuple(kernel))
    kernels.append((3,) * dims)
    return Pooling(strides, kernels, 2 ** np.asarray(pools))


def feature_units(patch, widths, classes: int = 2, heads: int = 1, strides=None) -> float:
    """Convolution outputs of our U-Net for one sample (nnU-Net's unit of memory),
    with its ``heads`` outputs of ``classes`` logits at the patch's resolution (the main head
    and the deep-supervision heads, upsampled): nnU-Net counts its segmentation outputs too,
    and with 137 classes they outweigh the features. ``strides``: each stage's, per axis
    (:class:`Pooling`; default: 2 along every axis after the first)."""
    units = float(heads * classes * np.prod(patch))
    if strides is None:
        strides = [(1,) * len(patch)] + [(2,) * len(patch)] * (len(widths) - 1)
    cumulative = np.cumprod(np.asarray(strides, int), 0)
    for stage, width in enumerate(widths):
        voxels = float(np.prod(np.maximum(1, np.asarray(patch) // cumulative[stage])))
        units += 2 * width * voxels  # encoder: two convolutions
        if stage < len(widths) - 1:
            units += 4 * width * voxels  # decoder: upsampling, two convolutions, attention
    return units


def widths_for(stages: int, dims: int, base: int) -> list[int]:
    return [min(MAX_WIDTH[dims], base * 2**s) for s in range(stages)]


def fit_patch(spacing, median_shape, dims: int, memory_gib: float, cpu: bool, base: int,
              classes: int = 2):  # fmt: skip
    """nnU-Net's search: a patch of the data's aspect in mm, as large as the median case
    and rounded up to what the network's poolings divide (:func:`pooling`; ``pad_shape`` in
    nnU-Net: a 47-slice case gets 48, not 40), shrunk one divisor at a time along the axis
    largest relative to that case until two samples fit; then the batch size the memory
    allows (at least 2, at most 5 % of the dataset). The outputs of ``classes`` logits
    count (:func:`feature_units`; the planned deep supervision: a head on every decoder
    block but the coarsest in 3D, two in 2D).

    Returns:
        the patch, the widths, the batch size and the :class:`Pooling`.
    """
    aspect = 1 / np.asarray(spacing, float)
    volume = 256.0**3 if dims == 3 else 2048.0**2
    patch = np.round(aspect * (volume / np.prod(aspect)) ** (1 / dims)).astype(int)
    patch = np.minimum(patch, np.maximum(np.asarray(median_shape, int), MIN_EDGE * 2))
    ref_units, ref_batch = REFERENCE[dims]
    budget = ref_units * memory_gib / 8 / (2 if cpu else 1)
    while True:
        pools = pooling(spacing, patch)
        patch = -(-patch // pools.divisor) * pools.divisor  # rounded up, as nnU-Net's pad_shape
        stages = len(pools.strides)
        widths = widths_for(stages, dims, base)
        heads = 1 + (max(0, stages - 2) if dims == 3 else 2)
        units = feature_units(patch, widths, classes, heads, pools.strides)
        if units / ref_batch * 2 <= budget:
            break
        reducible = patch > MIN_EDGE * 2
        if not reducible.any():
            break
        ratios = np.where(reducible, patch / np.asarray(median_shape, float), -np.inf)
        axis = int(np.argmax(ratios))
        # as nnU-Net: the divisor of the patch one divisor shorter, so that no valid size is
        # skipped (224 lies between 256 and 192 when 256 divides by 64)
        shorter = patch.copy()
        shorter[axis] -= pools.divisor[axis]
        step = pooling(spacing, np.maximum(shorter, 1)).divisor[axis]
        patch[axis] = max(MIN_EDGE * 2, patch[axis] - step)
    batch = max(2, int(budget / units * ref_batch))
    return [int(p) for p in patch], widths, batch, pools
