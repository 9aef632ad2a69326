"""2D slices of 3D volumes: slice-wise segmentation, as QuickNAT and the scSE paper train.

Volumes in the MSD layout are read and preprocessed as for 3D training (RAS orientation,
spacing, intensity); training draws single slices across ``slice_axis``, validation and
prediction run the 2D network over every slice of whole volumes and score them in 3D.
"""

from __future__ import annotations

import torch
from monai import transforms as T
from monai.data import CacheDataset

from scseg.data.augment import intensity_augmentation, transform_region
from scseg.data.labels import sparse_labels
from scseg.data.volumes3d import MSD3DDataModule

SLICE_PLANES = {0: "sagittal", 1: "coronal", 2: "axial"}


class SliceDataset(torch.utils.data.Dataset):
    """Slices across ``axis`` of preprocessed volumes ``{"image": (C, X, Y, Z), "label": ...}``.

    An epoch has one item per slice (times ``repeats``). Each item is a slice with some
    foreground with probability ``foreground_ratio``, else any slice, drawn from torch's
    RNG (so ``seed_everything`` reaches it); ``transform`` then augments it, seeded the
    same way.
    """

    def __init__(
        self,
        volumes: CacheDataset,
        axis: int,
        transform: T.Compose,
        foreground_ratio: float = 0.9,
        repeats: int = 1,
        ignore_index: int | None = None,
    ) -> None:
        self.volumes, self.axis, self.transform = volumes, axis, transform
        self.ratio, self.repeats = foreground_ratio, repeats
        self.all: list[tuple[int, int]] = []
        self.foreground: list[tuple[int, int]] = []
        others = tuple(d for d in range(1, 4) if d != axis + 1)  # within-slice axes
        for v in range(len(volumes)):
            label = volumes[v]["label"]
            # foreground: a class above background that is annotated, or any region
            fg = (label > 0) if ignore_index is None else (label > 0) & (label != ignore_index)
            has = fg.any(dim=others).any(0) if label.ndim == 4 else None
            for k in range(label.shape[axis + 1]):
                self.all.append((v, k))
                if has is not None and bool(has[k]):
                    self.foreground.append((v, k))
        if not self.foreground:
            self.foreground = self.all

    def __len__(self) -> int:
        return len(self.all) * self.repeats

    def __getitem__(self, index: int) -> dict:
        pool = self.foreground if float(torch.rand(())) < self.ratio else self.all
        v, k = pool[int(torch.randint(len(pool), ()))]
        volume = self.volumes[v]
        item = {key: volume[key].select(self.axis + 1, k).clone() for key in ("image", "label")}
        self.transform.set_random_state(seed=int(torch.randint(2**31 - 1, ())))
        return self.transform(item)


class MSDSlicesDataModule(MSD3DDataModule):
    """2D training on slices of MSD-layout volumes; validation on whole volumes.

    Takes :class:`~scseg.data.volumes3d.MSD3DDataModule`'s arguments, with these changes:

    Args:
        patch_size: the 2D training crop (slices are padded to it where smaller).
        slice_axis: 0 (sagittal), 1 (coronal, the default, as QuickNAT) or 2 (axial), after
            RAS orientation. Saved in checkpoints: ``scseg predict`` segments volumes slice
            by slice across the same axis.
        foreground_ratio: share of training slices drawn among those with foreground.
        flip_axes: in-plane axes of the slice (0, 1) mirrored at random; none by default,
            since mirroring swaps left and right structures.
        repeats: passes over the slices per epoch.
        batch_size: slices per batch.
        intensity_augmentation: as for 3D; the slice's own (low resolution in-plane).
        spatial_margin: as for 3D, for the in-plane turn and scaling.
        native: as for 3D: the parcellation sample's native-space subjects
            (``split_file: split_native.json`` validates on them).

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
        num_workers: int = 0,
        cache_rate: float = 1.0,
        validate: bool = True,
        atlas: str | None = None,
        fold: int | None = None,
        native: int = 0,
    ) -> None:
        if slice_axis not in SLICE_PLANES:
            raise ValueError(f"slice_axis must be 0, 1 or 2, got {slice_axis}")
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
        )

    def _slice_augmentation(self) -> list:
        """Crop, mirror, turn (up to 15 degrees) and scale (0.9-1.1) with probability 0.3,
        then intensities; with ``spatial_margin`` the turn acts on a larger crop whose
        centre becomes the patch (no zero-filled corners)."""
        keys = ("image", "label")
        margin = self.hparams.get("spatial_margin", False)
        region = transform_region(self.patch_size, (0.26,), 0.9) if margin else self.patch_size
        return sparse_labels(self.ignore_index, [
            T.SpatialPadd(keys, region),
            T.RandSpatialCropd(keys, region, random_size=False),
            *[T.RandFlipd(keys, prob=0.5, spatial_axis=a) for a in self.hparams.flip_axes],
            T.RandAffined(
                keys, prob=0.3, rotate_range=0.26, scale_range=0.1,
                mode=("bilinear", "nearest"), padding_mode="zeros",
            ),
            *([T.CenterSpatialCropd(keys, self.patch_size)] if margin else []),
            *intensity_augmentation("image", self.hparams.intensity_augmentation, 2),
        ])  # fmt: skip

    def info(self) -> dict:
        """The volume module's, with the slice axis, and the mirrored in-plane axes as
        the volume's own (the slice's axes are the other two, in order)."""
        in_plane = [a for a in range(3) if a != self.hparams.slice_axis]
        mirrored = [in_plane[a] for a in self.hparams.flip_axes]
        return {**super().info(), "slice_axis": self.hparams.slice_axis, "mirror_axes": mirrored}
