"""2D slices of 3D volumes: slice-wise segmentation, as QuickNAT and the scSE paper train.

Volumes in the MSD layout are read and preprocessed as for 3D training (RAS orientation,
spacing, intensity); training draws single slices across ``slice_axis``, validation and
prediction run the 2D network over every slice of whole volumes and score them in 3D.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai import transforms as T
from monai.data import CacheDataset

from scseg.data.augment import (
    intensity_augmentation,
    rotation_matrix,
    transform_region,
    untracked,
)
from scseg.data.labels import sparse_labels
from scseg.data.volumes3d import MSD3DDataModule

SLICE_PLANES = {0: "sagittal", 1: "coronal", 2: "axial"}


def oblique_turn(rotation: Sequence[float], scale: Sequence[float]) -> torch.Tensor:
    """A turn drawn in +-``rotation`` (radians) about each volume axis, times a scale per
    axis drawn in ``scale`` (low, high), from torch's RNG: the 3 x 3 matrix (float64) that
    :func:`oblique_slice` turns a volume by."""
    angles = (2 * torch.rand(3, dtype=torch.float64) - 1) * torch.tensor(rotation)
    low, high = scale
    factors = low + (high - low) * torch.rand(3, dtype=torch.float64)
    return torch.from_numpy(rotation_matrix(angles.tolist(), 3)) @ torch.diag(factors)


def oblique_place(
    shape: Sequence[int], axis: int, matrix: torch.Tensor, voxel: Sequence[int]
) -> tuple[float, list[int]]:
    """Where ``voxel`` ``(x, y, z)`` of a volume of ``shape`` lies once the volume is
    turned by ``matrix`` about its centre (:func:`oblique_slice`): the plane across
    ``axis`` that holds it, and its pixel in that plane.

    The plane is fractional and may lie past the volume's own slices (a zoom moves an edge
    voxel out along the axis); the pixel may lie outside the slice where the turn or the
    zoom moves the voxel out of view (a crop around it then keeps to the slice's nearest
    part).
    """
    centre = (torch.tensor(shape, dtype=torch.float64) - 1) / 2
    at = torch.linalg.solve(matrix, torch.tensor(voxel, dtype=torch.float64) - centre) + centre
    return float(at[axis]), [round(float(at[d])) for d in range(3) if d != axis]


def oblique_slice(
    volume: dict, axis: int, plane: float, matrix: torch.Tensor, fill_label: int | None = None
) -> dict:
    """The slice at ``plane`` across ``axis`` of the volume turned by ``matrix``
    (:func:`oblique_turn`) about its centre: an oblique cut through it, as a subject out
    of the training pose would be cut.

    The turn is made in voxel space, which is the world's at the isotropic spacing the
    parcellation trains at (with anisotropic voxels it also shears). Image bilinear, labels
    nearest, zero outside the volume; each keeps its type (and MONAI metadata) and the
    in-plane shape of the volume's own slices. ``plane`` may be fractional, or past the
    volume's slices (:func:`oblique_place`).
    """
    shape = volume["image"].shape[1:]
    others = [d for d in range(3) if d != axis]
    size = torch.tensor(shape, dtype=torch.float64)
    centre = (size - 1) / 2
    grids = torch.meshgrid(*[torch.arange(shape[d], dtype=torch.float64) for d in others],
                           indexing="ij")  # fmt: skip
    q = torch.full((*grids[0].shape, 3), float(plane), dtype=torch.float64)
    q[..., others[0]], q[..., others[1]] = grids
    where = (q - centre) @ matrix.T + centre  # voxel of the volume each pixel samples
    # grid_sample's (x, y, z) run over the last, middle and first volume axes
    grid = (2 * where / (size - 1).clamp(min=1) - 1).flip(-1)[None, None].float()
    nearest = min(max(round(plane), 0), shape[axis] - 1)  # the slice whose type it keeps
    out = {}
    for key, mode in (("image", "bilinear"), ("label", "nearest")):
        data = volume[key]
        sampled = F.grid_sample(torch.as_tensor(data)[None].float(), grid, mode=mode,
                                padding_mode="zeros", align_corners=True)[0, :, 0]  # fmt: skip
        out[key] = data.select(axis + 1, nearest).clone()
        out[key].copy_(sampled.round() if mode == "nearest" else sampled)
    if fill_label is not None:
        outside = ((where.round() < 0) | (where.round() > size - 1)).any(-1)
        out["label"][:, outside] = fill_label
    return out


SLICE_SAMPLING = ("case", "class", "slice")
MAX_POINTS = 100_000  # foreground voxels kept per volume to centre patches on (a seeded draw)
CLASS_POINTS = 10_000  # per class and volume with slice_sampling "class" (nnU-Net's 10,000)


def slice_sampling_check(sampling: str) -> None:
    """Raises ``ValueError`` for an unknown ``slice_sampling`` name (:class:`SliceDataset`)."""
    if sampling not in SLICE_SAMPLING:
        raise ValueError(f"slice_sampling must be one of {SLICE_SAMPLING}, got {sampling!r}")


class SliceDataset(torch.utils.data.Dataset):
    """Slices across ``axis`` of preprocessed volumes ``{"image": (C, X, Y, Z), "label": ...}``.

    An epoch has one item per slice (times ``repeats``). How an item is drawn
    (``sampling``), from torch's RNG (so ``seed_everything`` reaches it):

    - ``"case"`` (nnU-Net's 2d): a volume, each as likely; with probability
      ``foreground_ratio`` one of its foreground voxels, whose slice it is and, where the
      slice is larger than ``region``, on which the in-plane crop is centred (kept inside
      the slice); else any of its slices. Every foreground voxel is as likely, so a large
      structure is drawn more often than a small one.
    - ``"class"`` (nnU-Net's oversampling exactly): as ``"case"``, but a foreground draw
      picks a class (or region) present in the volume first, each as likely, then one of
      its voxels (up to ``CLASS_POINTS`` kept per class), so at many classes the small
      structures are drawn as often as the large ones.
    - ``"slice"``: with probability ``foreground_ratio`` a slice with some foreground,
      else any slice, both among all volumes' slices (a volume with more foreground slices
      is drawn more often); the crop is left to ``transform``.

    With probability ``oblique_prob`` the slice is cut obliquely instead
    (:func:`oblique_slice`, ``oblique_rotation`` and ``oblique_scale``), before any crop;
    around a foreground voxel, the cut is the turned plane that holds the voxel
    (:func:`oblique_place`) and the crop is centred where it lies in it. ``transform``
    then augments it, seeded the same way.
    """

    def __init__(
        self,
        volumes: CacheDataset,
        axis: int,
        transform: T.Compose,
        foreground_ratio: float = 0.9,
        repeats: int = 1,
        ignore_index: int | None = None,
        oblique_rotation: Sequence[float] = (0.0, 0.0, 0.0),
        oblique_scale: Sequence[float] = (1.0, 1.0),
        oblique_prob: float = 0.5,
        sampling: str = "slice",
        region: Sequence[int] | None = None,
    ) -> None:
        slice_sampling_check(sampling)
        self.volumes, self.axis, self.transform = volumes, axis, transform
        self.ratio, self.repeats, self.sampling = foreground_ratio, repeats, sampling
        self.ignore_index = ignore_index
        self.region = tuple(region) if region is not None else None
        self.oblique = (tuple(oblique_rotation), tuple(oblique_scale))
        moved = any(oblique_rotation) or tuple(oblique_scale) != (1.0, 1.0)
        self.oblique_prob = oblique_prob if moved else 0.0  # no draw: the RNG as before
        self.all: list[tuple[int, int]] = []
        self.foreground: list[tuple[int, int]] = []
        # per volume: (N, 3) foreground voxels; "class": a list of them, one per class
        self.points: list[torch.Tensor | list[torch.Tensor]] = []
        others = tuple(d for d in range(1, 4) if d != axis + 1)  # within-slice axes
        keep = torch.Generator().manual_seed(0)
        for v in range(len(volumes)):
            label = volumes[v]["label"]
            # foreground: a class above background that is annotated, or any region
            fg = (label > 0) if ignore_index is None else (label > 0) & (label != ignore_index)
            has = fg.any(dim=others).any(0) if label.ndim == 4 else None
            for k in range(label.shape[axis + 1]):
                self.all.append((v, k))
                if has is not None and bool(has[k]):
                    self.foreground.append((v, k))
            if sampling == "case":
                points = torch.as_tensor(fg).any(0).nonzero().to(torch.int32)
                if len(points) > MAX_POINTS:
                    points = points[torch.randperm(len(points), generator=keep)[:MAX_POINTS]]
                self.points.append(points)
            elif sampling == "class":
                self.points.append(_class_points(torch.as_tensor(label), fg, keep))
        if not self.foreground:
            self.foreground = self.all

    def __len__(self) -> int:
        return len(self.all) * self.repeats

    def _draw(self) -> tuple[int, int, list[int] | None]:
        """A volume, a slice of it, and the in-plane voxel to centre the crop on (or None)."""
        if self.sampling == "slice":
            pool = self.foreground if float(torch.rand(())) < self.ratio else self.all
            v, k = pool[int(torch.randint(len(pool), ()))]
            return v, k, None
        v = int(torch.randint(len(self.volumes), ()))
        points = self.points[v]
        if float(torch.rand(())) < self.ratio and len(points):
            if self.sampling == "class":  # a class first, then a voxel of it; one class
                # is no draw, so a binary task draws as "case" does, number for number
                points = (
                    points[int(torch.randint(len(points), ()))] if len(points) > 1 else points[0]
                )
            point = points[int(torch.randint(len(points), ()))].tolist()
            return v, point[self.axis], [c for a, c in enumerate(point) if a != self.axis]
        depth = self.volumes[v]["label"].shape[self.axis + 1]
        return v, int(torch.randint(depth, ())), None

    def __getitem__(self, index: int) -> dict:
        v, k, centre = self._draw()
        volume = self.volumes[v]
        if self.oblique_prob and float(torch.rand(())) < self.oblique_prob:
            # around a foreground voxel: the turned plane that holds it, cropped where it lies
            matrix, plane = oblique_turn(*self.oblique), k
            if centre is not None:
                voxel = [*centre[: self.axis], k, *centre[self.axis :]]
                shape = volume["image"].shape[1:]
                plane, centre = oblique_place(shape, self.axis, matrix, voxel)
            item = oblique_slice(volume, self.axis, plane, matrix, self.ignore_index)
        else:
            item = {key: volume[key].select(self.axis + 1, k).clone() for key in ("image", "label")}
        if centre is not None and self.region is not None:
            item = _crop_around(item, centre, self.region)
        self.transform.set_random_state(seed=int(torch.randint(2**31 - 1, ())))
        return self.transform(item)


def _class_points(label: torch.Tensor, fg: torch.Tensor, keep: torch.Generator) -> list:
    """Per class present in ``label`` (one channel of class values) or per region (one
    channel each), up to ``CLASS_POINTS`` of its foreground voxels (``fg``), a seeded draw;
    a lone class keeps what ``"case"`` keeps (up to ``MAX_POINTS``, the same draw)."""
    fg = torch.as_tensor(fg)
    if label.shape[0] > 1:
        masks = [fg[r] for r in range(label.shape[0])]
    else:
        masks = [fg[0] & (label[0] == c) for c in label[0][fg[0]].unique()]
    cap = MAX_POINTS if len(masks) == 1 else CLASS_POINTS
    points = []
    for mask in masks:
        found = mask.nonzero().to(torch.int32)
        if len(found) > cap:
            found = found[torch.randperm(len(found), generator=keep)[:cap]]
        if len(found):
            points.append(found)
    return points


def _crop_around(item: dict, centre: Sequence[int], region: Sequence[int]) -> dict:
    """``item``'s slices cut to ``region`` around ``centre`` along each axis longer than
    it, the cut kept inside the slice (so ``centre`` stays in it)."""
    cuts = [slice(None)]
    for c, r, n in zip(centre, region, item["image"].shape[1:], strict=True):
        start = min(max(c - r // 2, 0), n - r) if n > r else 0
        cuts.append(slice(start, start + r) if n > r else slice(None))
    return {key: value[tuple(cuts)] for key, value in item.items()}


class MSDSlicesDataModule(MSD3DDataModule):
    """2D training on slices of MSD-layout volumes; validation on whole volumes.

    Takes :class:`~scseg.data.volumes3d.MSD3DDataModule`'s arguments, with these changes:

    Args:
        patch_size: the 2D training crop (slices are padded to it where smaller).
        slice_axis: 0 (sagittal), 1 (coronal, the default, as QuickNAT) or 2 (axial), after
            RAS orientation. Saved in checkpoints: ``scseg predict`` segments volumes slice
            by slice across the same axis.
        foreground_ratio: share of training slices drawn around a foreground voxel
            (``slice_sampling="case"``) or among slices with foreground (``"slice"``).
        slice_sampling: ``"case"`` (nnU-Net's 2d): a case, each as likely, then a
            foreground voxel of it (the patch centred on it) or any of its slices;
            ``"class"``: as ``"case"``, the foreground voxel drawn after a class present
            in the case (nnU-Net's oversampling: small structures as often as large);
            ``"slice"``: any slice with foreground of any case, cropped anywhere
            (:class:`SliceDataset`).
        flip_axes: in-plane axes of the slice (0, 1) mirrored at random; none by default,
            since mirroring swaps left and right structures.
        repeats: passes over the slices per epoch.
        batch_size: slices per batch.
        intensity_augmentation: as for 3D; the slice's own (low resolution in-plane).
        spatial_margin: as for 3D, for the in-plane turn and scaling.
        native: as for 3D: the parcellation sample's native-space subjects
            (``split_file: split_native.json`` validates on them).
        oblique_rotation: largest turn (radians) about each volume axis of the plane a
            training slice is cut along: a share ``oblique_prob`` of the slices are cut
            from the volume turned, and scaled per axis in ``oblique_scale``, about its
            centre (:func:`oblique_slice`), so a slice-wise network sees the out-of-plane
            turns that in-plane augmentation cannot make. None by default; (0.26, 0.26,
            0.26) and (0.85, 1.15) cover the parcellation's native-space subjects.
        oblique_scale: range of the per-axis scale of an oblique cut.
        oblique_prob: share of training slices cut obliquely when a turn or scale is set.

    Volumes are kept in memory (``cache`` is not an option here).
    """

    spatial_dims = 2

    def __init__(
        self,
        root: str | None = None,
        sample: str | None = None,
        classes: int = 2,
        class_names: list[str] | None = None,
        in_channels: int = 1,
        split_file: str = "split.json",
        patch_size: tuple[int, int] = (128, 128),
        slice_axis: int = 1,
        spacing: tuple[float, float, float] | None = None,
        intensity: str = "auto",
        ct_window: tuple[float, float] = (-175.0, 250.0),
        foreground_ratio: float = 0.9,
        repeats: int = 1,
        flip_axes: tuple[int, ...] = (),
        intensity_augmentation: str = "light",
        spatial_margin: bool = False,
        batch_size: int = 16,
        num_workers: int | None = None,
        cache_rate: float = 1.0,
        validate: bool = True,
        atlas: str | None = None,
        fold: int | None = None,
        native: int = 0,
        oblique_rotation: tuple[float, float, float] = (0.0, 0.0, 0.0),
        oblique_scale: tuple[float, float] = (1.0, 1.0),
        oblique_prob: float = 0.5,
        slice_sampling: str = "case",
    ) -> None:
        if slice_axis not in SLICE_PLANES:
            raise ValueError(f"slice_axis must be 0, 1 or 2, got {slice_axis}")
        if len(oblique_rotation) != 3 or not all(0 <= a <= 1.58 for a in oblique_rotation):
            raise ValueError(f"oblique_rotation must be 3 angles in [0, pi/2], got "
                             f"{oblique_rotation}")  # fmt: skip
        if len(oblique_scale) != 2 or not 0 < oblique_scale[0] <= oblique_scale[1]:
            raise ValueError(f"oblique_scale must be (low, high), 0 < low <= high, got "
                             f"{oblique_scale}")  # fmt: skip
        if not 0.0 <= oblique_prob <= 1.0:
            raise ValueError(f"oblique_prob must be in [0, 1], got {oblique_prob}")
        slice_sampling_check(slice_sampling)
        if bad := [a for a in flip_axes if a not in (0, 1)]:
            raise ValueError(f"flip_axes must be slice axes 0 and 1; got {bad}")
        super().__init__(
            root=root, sample=sample, classes=classes, class_names=class_names,
            in_channels=in_channels, split_file=split_file, patch_size=patch_size,
            spacing=spacing, intensity=intensity, ct_window=ct_window,
            foreground_ratio=foreground_ratio, repeats=repeats, flip_axes=(),
            intensity_augmentation=intensity_augmentation, spatial_margin=spatial_margin,
            batch_size=batch_size,
            num_workers=num_workers, cache_rate=cache_rate,
            validate=validate, atlas=atlas, fold=fold, native=native,
        )  # fmt: skip
        self.hparams["flip_axes"] = tuple(flip_axes)  # in-plane axes, not the volume's

    def _train_set(self, items: list[dict], pre: list) -> torch.utils.data.Dataset:
        volumes = CacheDataset(
            items, T.Compose(pre), cache_rate=self.hparams.cache_rate, copy_cache=False,
            progress=False,
        )  # fmt: skip
        augment = T.Compose(self._slice_augmentation())
        return SliceDataset(
            volumes,
            self.hparams.slice_axis,
            augment,
            self.hparams.foreground_ratio,
            self.hparams.repeats,
            self.ignore_index,
            self.hparams.oblique_rotation,
            self.hparams.oblique_scale,
            self.hparams.oblique_prob,
            self.hparams.get("slice_sampling", "slice"),
            self._region(),
        )

    def _region(self) -> tuple[int, ...]:
        """The crop the in-plane turn acts on: the patch, or with ``spatial_margin`` a
        region large enough for the largest turn and scaling."""
        if self.hparams.get("spatial_margin", False):
            return tuple(transform_region(self.patch_size, (0.26,), 0.9))
        return tuple(self.patch_size)

    def _slice_augmentation(self) -> list:
        """Crop, mirror, turn (up to 15 degrees) and scale (0.9-1.1) with probability 0.3,
        then intensities; with ``spatial_margin`` the turn acts on a larger crop whose
        centre becomes the patch (no zero-filled corners)."""
        keys = ("image", "label")
        margin = self.hparams.get("spatial_margin", False)
        region = self._region()
        return untracked(sparse_labels(self.ignore_index, [
            T.SpatialPadd(keys, region),
            T.RandSpatialCropd(keys, region, random_size=False),
            *[T.RandFlipd(keys, prob=0.5, spatial_axis=a) for a in self.hparams.flip_axes],
            T.RandAffined(
                keys, prob=0.3, rotate_range=0.26, scale_range=0.1,
                mode=("bilinear", "nearest"), padding_mode="zeros",
            ),
            *([T.CenterSpatialCropd(keys, self.patch_size)] if margin else []),
            *intensity_augmentation("image", self.hparams.intensity_augmentation, 2),
        ]))  # fmt: skip

    def info(self) -> dict:
        """The volume module's, with the slice axis, and the mirrored in-plane axes as
        the volume's own (the slice's axes are the other two, in order)."""
        in_plane = [a for a in range(3) if a != self.hparams.slice_axis]
        mirrored = [in_plane[a] for a in self.hparams.flip_axes]
        return {**super().info(), "slice_axis": self.hparams.slice_axis, "mirror_axes": mirrored}
