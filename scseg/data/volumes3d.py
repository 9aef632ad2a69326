"""3D volumes with MONAI transforms, from a dataset folder in the Medical Segmentation
Decathlon layout, an nnU-Net v2 raw dataset, or ``imagesTr/`` + ``labelsTr/``
(:mod:`scseg.data.layouts` reads each); ``root/split.json`` says which cases train and
which validate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from monai import transforms as T
from monai.data import CacheDataset, DataLoader, Dataset, PersistentDataset

from scseg.atlas import check_prior_options, prior_channel, prior_items, residual_warp
from scseg.data.augment import (
    intensity_augmentation,
    intensity_augmentation_check,
    patch_crop,
    patch_turns,
    rest_centres_check,
    transform_region,
    untracked,
)
from scseg.data.base import SegmentationDataModule, evaluation_sampler, read_split
from scseg.data.caching import (
    Repeated,
    SeededCacheDataset,
    SeededPersistentDataset,
    file_stamped_hash,
    preprocessed_cache_dir,
)
from scseg.data.geometry import OrthonormalAffined
from scseg.data.intensity import FiniteIntensityd
from scseg.data.labels import RegionMasksd, label_scheme, sparse_labels
from scseg.data.layouts import read_dataset
from scseg.data.loading import SeededItems
from scseg.io.nrrd import ras_nrrd_reader

INTENSITY_MODES = ("auto", "zscore", "ct", "none")
CACHE_MODES = ("memory", "disk", "none")


def preprocessing(
    keys: Sequence[str],
    spacing: Sequence[float] | None,
    intensity: str,
    ct_window: Sequence[float] = (-175.0, 250.0),
    track_meta: bool = False,
    load: bool = True,
    nonfinite: str = "refuse",
    intensity_first: bool = True,
) -> list:
    """The deterministic steps shared by training, validation and prediction.

    Load (unless ``load`` is false: the data is already a MetaTensor) -> channel first ->
    NaN/Inf intensities refused or filled (``nonfinite``, :mod:`scseg.data.intensity`) ->
    intensity: ``"zscore"`` over non-zero voxels per channel (MR), ``"ct"`` clip to
    ``ct_window`` then scale to [0, 1], or ``"none"`` -> direction cosines snapped to
    orthonormal (:mod:`scseg.data.geometry`) -> RAS orientation -> resample to ``spacing``
    (linear for the image, nearest for labels).
    ``track_meta=True`` keeps the geometry record that inference needs to invert the steps.

    The intensities are normalised on the input's own grid, before resampling, as
    nnU-Net's preprocessor does. After resampling (``intensity_first=False``: how
    checkpoints without ``intensity_first`` in their data info saw their inputs, kept for
    them) the z-score's "non-zero"
    mask is a knife-edge: an output voxel that samples the edge of the scan's zero
    background with a weight of 1e-5 is non-zero, and becomes ``-mean/std`` (about -3)
    instead of 0, so a 1e-4 mm change of the affine (direction cosines stored to 6
    decimals, as in DICOM) changed single voxels by 3.3.
    """
    if intensity not in ("zscore", "ct", "none"):
        raise ValueError(f"intensity must be zscore, ct or none, got {intensity!r}")
    image_key = keys[0]
    scale: list = []
    if intensity == "zscore":
        scale.append(T.NormalizeIntensityd(image_key, nonzero=True, channel_wise=True))
    elif intensity == "ct":
        lo, hi = ct_window
        scale.append(T.ScaleIntensityRanged(image_key, lo, hi, 0.0, 1.0, clip=True))
    ops: list = [T.LoadImaged(keys, reader=ras_nrrd_reader(), image_only=True)] if load else []
    ops += [T.EnsureChannelFirstd(keys), FiniteIntensityd(image_key, nonfinite)]
    ops += scale if intensity_first else []
    ops += [
        OrthonormalAffined(keys),  # the same grid for the same scan in any format
        T.Orientationd(keys, axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))),
    ]
    if spacing is not None:
        modes = ["bilinear"] + ["nearest"] * (len(keys) - 1)
        ops.append(T.Spacingd(keys, pixdim=tuple(spacing), mode=modes))
    ops += [] if intensity_first else scale
    if not track_meta:
        ops.append(T.EnsureTyped(keys, dtype=None, track_meta=False))
    return ops


class MSD3DDataModule(SegmentationDataModule):
    """3D segmentation from an MSD-layout folder.

    Args:
        root: dataset folder; ``None`` with ``sample`` set uses the fetched sample.
        sample: a sample name (``"brain_tissue3d"``, ``"tumour3d"``,
            ``"brain_parcellation3d"``) to fetch and prepare.
        atlas: the parcellation of ``brain_parcellation3d`` (``"neuromorphometrics"``,
            the default, ``"desikan_killiany"`` or ``"aal"``).
        classes: number of classes including background.
        class_names: names for the report (default: ``dataset.json`` labels).
        in_channels: image channels (modalities).
        split_file: JSON with ``train`` and ``val`` case lists.
        patch_size: training patch, also the sliding-window size for validation.
        spacing: target voxel spacing in mm (``None`` keeps each volume's own).
        intensity: ``"auto"`` (``"ct"`` if dataset.json says CT, else ``"zscore"``),
            ``"zscore"``, ``"ct"`` or ``"none"``.
        ct_window: HU range for ``"ct"``.
        samples_per_volume: patches drawn from each training volume per visit.
        foreground_ratio: share of patches centred on a foreground voxel (oversampling).
        rest_centres: the other patches' centres: on ``"background"`` voxels or
            ``"anywhere"`` (nnU-Net's random crops; :func:`scseg.data.augment.patch_crop`).
        repeats: times each training volume is visited per epoch.
        flip_axes: axes (0 = left-right, 1 = anterior-posterior, 2 = superior-inferior,
            after RAS orientation) mirrored at random in training. Leave out axis 0 when
            labels name a side (left/right structures): a mirrored brain swaps them.
        rotation: largest random rotation in radians about axes 0, 1 and 2, each angle
            drawn in +-that; default a small in-plane turn (+-15 degrees about the
            superior-inferior axis). nnU-Net turns up to 30 degrees (0.52) about every axis.
        zoom: range of one random isotropic zoom factor (over 1 enlarges the content),
            ``(1, 1)`` for none (the default). nnU-Net scales by 0.7 to 1.4.
        spatial_prob: chance that a patch is rotated, and separately that it is zoomed
            (nnU-Net: 0.2 each).
        intensity_augmentation: ``"light"`` (a random scale and shift), ``"nnunet"``
            (nnU-Net v2's noise, blur, brightness, contrast, low resolution and gamma, at
            its probabilities) or ``"none"`` (:mod:`scseg.data.augment`).
        spatial_margin: turn and zoom a region large enough for the largest turn and
            zoom, then cut the patch from its centre (nnU-Net's way), so turned patches
            have no zero-filled corners; without it (the default) the patch itself is
            turned. Costs a larger crop per patch.
        batch_size: volumes a batch (``samples_per_volume`` patches each).
        num_workers: loader processes, kept for the run; ``None``: the cores less one (at
            most 12) when the network trains on a GPU, none on the CPU
            (``SCSEG_NUM_WORKERS`` overrides). Batches are the same with any number
            (:mod:`scseg.data.loading`).
        cache: where preprocessed volumes are kept after their first use: ``"memory"``
            (fastest; memory grows with the dataset), ``"disk"`` (each case written once,
            resampled and normalised, to ``cache_dir`` and read back when used: memory
            does not grow with the number of cases) or ``"none"`` (preprocessed every time).
        cache_dir: for ``cache="disk"``; default ``$SCSEG_DATA_DIR/preprocessed`` (or
            ``~/.cache/scseg/preprocessed``), in a subfolder per preprocessing setting.
        cache_rate: with ``cache="memory"``, the share of cases kept.
        fold: train on fold K of the split file's ``folds`` (``scseg plan --folds``).
        validate: check every case before training (:mod:`scseg.data.validation`):
            geometry, label values, NaN/Inf, empty files, duplicates; ``False`` skips it.
        native: with ``sample="brain_parcellation3d"``, add this many native-space subjects
            (:mod:`scseg.atlas.native`; ``split_file: split_native.json`` validates on them).
        label_prior: train a model that refines a registered atlas
            (``model.model_options.label_prior``, :mod:`scseg.atlas.model`): each input
            gets one more channel, a prior label map. For a training case it is the case's
            own labels, which the pose augmentation (``rotation``, ``zoom``) moves with the
            image while a residual warp (``prior_warp``) moves only image and labels, as a
            registration leaves them; validation and test cases get the atlas (``atlas_case``)
            registered to them (:func:`scseg.atlas.registration.register_labels`), once: the
            warped labels are kept in the preprocessing cache (``cache_dir``).
        prior_registration: how the atlas is registered to a case: ``"affine"`` or
            ``"deformable"`` (affine, then demons at 2 mm; seconds more per case).
        atlas_case: the training case that is the atlas (default: the first one).
        prior_warp: the residual warp of ``label_prior`` training, in voxels of
            ``spacing`` and radians: ``elastic_sigma`` and ``elastic_magnitude`` ranges
            (MONAI ``Rand3DElasticd``: 8-12 and 100-400 give displacements of 1.5 to 5
            voxels), ``rotation`` (about each axis), ``scale`` (relative) and ``shift``.
        registered_copies: train instead on this many copies of each training case moved
            as native subjects are, each with the atlas registered to it as in prediction
            (:func:`scseg.atlas.priors.registered_copies`; no residual warp).
    """

    def __init__(
        self,
        root: str | None = None,
        sample: str | None = None,
        classes: int = 2,
        class_names: list[str] | None = None,
        in_channels: int = 1,
        split_file: str = "split.json",
        patch_size: tuple[int, int, int] = (64, 64, 64),
        spacing: tuple[float, float, float] | None = None,
        intensity: str = "auto",
        ct_window: tuple[float, float] = (-175.0, 250.0),
        samples_per_volume: int = 2,
        foreground_ratio: float = 0.5,
        rest_centres: str = "background",
        repeats: int = 1,
        flip_axes: tuple[int, ...] = (0, 1, 2),
        rotation: tuple[float, float, float] = (0.0, 0.0, 0.26),
        zoom: tuple[float, float] = (1.0, 1.0),
        spatial_prob: float = 0.2,
        intensity_augmentation: str = "light",
        spatial_margin: bool = False,
        batch_size: int = 2,
        num_workers: int | None = None,
        cache_rate: float = 1.0,
        validate: bool = True,
        atlas: str | None = None,
        cache: str = "memory",
        cache_dir: str | None = None,
        fold: int | None = None,
        native: int = 0,
        label_prior: bool = False,
        prior_registration: str = "affine",
        atlas_case: str | None = None,
        prior_warp: dict | None = None,
        registered_copies: int = 0,
    ) -> None:
        super().__init__(root, sample, classes, class_names, in_channels, patch_size, atlas,
                         fold)  # fmt: skip
        if cache not in CACHE_MODES:
            raise ValueError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
        if bad := [a for a in flip_axes if a not in range(3)]:
            raise ValueError(f"flip_axes must be volume axes 0, 1, 2; got {bad}")
        if len(rotation) != 3 or not all(0.0 <= a <= math.pi for a in rotation):
            raise ValueError(f"rotation must be 3 angles in [0, pi] radians, got {rotation}")
        if len(zoom) != 2 or not 0.0 < zoom[0] <= zoom[1]:
            raise ValueError(f"zoom must be (low, high) with 0 < low <= high, got {zoom}")
        if not 0.0 <= spatial_prob <= 1.0:
            raise ValueError(f"spatial_prob must be in [0, 1], got {spatial_prob}")
        if intensity not in INTENSITY_MODES:
            raise ValueError(f"intensity must be one of {INTENSITY_MODES}, got {intensity!r}")
        if not 0.0 <= foreground_ratio <= 1.0:
            raise ValueError(f"foreground_ratio must be in [0, 1], got {foreground_ratio}")
        rest_centres_check(rest_centres)
        intensity_augmentation_check(intensity_augmentation)
        check_prior_options(prior_registration, prior_warp, registered_copies)
        self.save_hyperparameters()
        self.atlas_files: dict[str, str] | None = None
        # from dataset.json at setup (scseg.data.labels)
        self.scheme, self.ignore_index, self.multilabel = None, None, False

    spatial_dims = 3

    def _intensity(self, meta: dict) -> str:
        if self.hparams.intensity != "auto":
            return self.hparams.intensity
        given = meta.get("channel_names") or meta.get("modality") or {}  # nnU-Net v2, MSD
        modalities = [str(m).upper() for m in given.values()]
        return "ct" if modalities and all(m == "CT" for m in modalities) else "zscore"

    def setup(self, stage: str | None = None) -> None:
        root = self.dataset_root()
        meta, pairs = read_dataset(root)
        split = read_split(root, self.hparams.split_file, self.fold)
        if missing := [c for c in split["train"] + split["val"] if c not in pairs]:
            raise ValueError(f"{root / self.hparams.split_file}: unknown cases {missing[:5]}")
        self._read_labels(meta, root)
        if self.hparams.validate and stage in (None, "fit"):
            self.validate(root, split, pairs)
        self.intensity = self._intensity(meta)
        keys = self._keys()
        pre = preprocessing(keys, self.hparams.spacing, self.intensity, self.hparams.ct_window)
        if self.scheme is not None and self.scheme.regions is not None:
            pre.append(RegionMasksd("label", self.scheme.regions))

        def with_case(cases: list[str]) -> list[dict]:
            return [{**pairs[c], "case": c} for c in cases]

        hp = self.hparams
        if hp.get("label_prior"):
            folder = preprocessed_cache_dir(hp.cache_dir, {"priors": hp.prior_registration})
            self.atlas_files, with_case = prior_items(pairs, split, hp.atlas_case,
                hp.prior_registration, folder, hp.get("registered_copies", 0))  # fmt: skip
        self._cache_settings = {"spacing": hp.spacing, "intensity": self.intensity,
                                "ct_window": hp.ct_window, "grid": "orthonormal",
                                "intensity_first": True}  # fmt: skip
        if self.multilabel:  # cached labels are region masks
            self._cache_settings["labels"] = self.scheme.info()
        self.train_set = self._train_set(with_case(split["train"]), pre)
        whole = pre + prior_channel(self.hparams.get("label_prior", False))
        self.val_set = self._dataset(with_case(split["val"]), whole)
        same = split["test"] == split["val"]  # the usual case: validation cases, held once
        self.test_set = self.val_set if same else self._dataset(with_case(split["test"]), whole)

    def _keys(self) -> tuple[str, ...]:
        prior = ("prior",) if self.hparams.get("label_prior") else ()
        return ("image", "label", *prior)

    def _read_labels(self, meta: dict, root: Path) -> None:
        """Class or region names, the ignore value and the mode from ``dataset.json``
        (:mod:`scseg.data.labels`)."""
        self.scheme = label_scheme(meta, str(root / "dataset.json"))
        self.ignore_index = self.scheme.ignore if self.scheme else None
        self.multilabel = bool(self.scheme and self.scheme.multilabel)
        if self.multilabel and self.scheme.channels != self.classes:
            raise ValueError(
                f"{root / 'dataset.json'}: {self.scheme.channels} regions, but data.classes="
                f"{self.classes}: set classes (and model.classes) to the number of regions"
            )
        if self.class_names is not None:
            return
        if self.scheme is not None and self.scheme.channels == self.classes:
            self.class_names = list(self.scheme.names)
        elif self.scheme is None and "labels" in meta:
            labels = meta["labels"]
            self.class_names = [str(labels.get(str(i), i)) for i in range(self.classes)]

    def _dataset(self, items: list[dict], transforms: list, seeded: bool = False):
        """``items`` through ``transforms``, the deterministic head of which is cached as
        ``cache`` says; ``seeded``: the random tail is seeded per item (training)."""
        compose = T.Compose(transforms)
        mode = self.hparams.get("cache", "memory")  # subclasses without the option: memory
        if mode == "memory":
            kind = SeededCacheDataset if seeded else CacheDataset
            return kind(items, compose, cache_rate=self.hparams.cache_rate, progress=False)
        if mode == "disk":
            kind = SeededPersistentDataset if seeded else PersistentDataset
            folder = preprocessed_cache_dir(self.hparams.get("cache_dir"), self._cache_settings)
            return kind(items, compose, cache_dir=folder, hash_func=file_stamped_hash)
        if seeded:
            return SeededPersistentDataset(items, compose, cache_dir=None)  # no cache
        return Dataset(items, compose)

    def _train_set(self, items: list[dict], pre: list) -> torch.utils.data.Dataset:
        """Random patches of the training volumes, augmented."""
        augment = self._patch_augmentation()
        return Repeated(self._dataset(items, pre + augment, seeded=True), self.hparams.repeats)

    def _patch_augmentation(self) -> list:
        """Crop (foreground-centred with ``foreground_ratio``), mirror, turn and zoom, then
        intensities. With ``spatial_margin`` the crop is a region large enough for the
        largest turn and zoom, and the patch is cut from its centre after them."""
        keys = self._keys()
        ratio = self.hparams.foreground_ratio
        margin = self.hparams.get("spatial_margin", False)
        region = self.patch_size
        if margin:
            region = transform_region(self.patch_size, self.hparams.rotation, self.hparams.zoom[0])
        crop = patch_crop(keys, region, ratio, self.hparams.samples_per_volume,
                          self.hparams.get("rest_centres", "background"), self.ignore_index,
                          self.classes)  # fmt: skip
        warp = self.hparams.get("label_prior") and not self.hparams.get("registered_copies")
        return untracked(sparse_labels(self.ignore_index, [
            *(residual_warp(self.hparams.prior_warp) if warp else []),
            T.SpatialPadd(keys, region),
            crop,
            *[T.RandFlipd(keys, prob=0.5, spatial_axis=a) for a in self.hparams.flip_axes],
            *patch_turns(keys, self.hparams.rotation, self.hparams.zoom, self.hparams.spatial_prob),
            *([T.CenterSpatialCropd(keys, self.patch_size)] if margin else []),
            *intensity_augmentation("image", self.hparams.intensity_augmentation, 3),
            *prior_channel(self.hparams.get("label_prior", False)),
        ]))  # fmt: skip

    def validate(self, root: Path, split: dict, pairs: dict[str, dict[str, str]]) -> None:
        """Raises :class:`~scseg.data.validation.DataValidationError` listing bad cases."""
        from scseg.data.validation import validate_msd

        validate_msd(root, split, pairs, self.in_channels, self.classes, self.scheme,
                     self.ignore_index, self.multilabel)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            SeededItems(self.train_set),
            batch_size=self.hparams.batch_size,
            sampler=self.training_sampler(self.train_set),
            **self.loader_options(),
        )

    def val_dataloader(self) -> DataLoader:
        return self._evaluation_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._evaluation_loader(self.test_set)

    def _evaluation_loader(self, dataset) -> DataLoader:
        sampler = evaluation_sampler(dataset)
        return DataLoader(dataset, batch_size=1, sampler=sampler,
                          **self.loader_options())  # fmt: skip

    def info(self) -> dict:
        """Plain settings that inference needs, stored in checkpoints."""
        return {
            "spatial_dims": self.spatial_dims,
            "patch_size": list(self.patch_size),
            "spacing": list(self.hparams.spacing) if self.hparams.spacing else None,
            "intensity": getattr(self, "intensity", self.hparams.intensity),
            "ct_window": list(self.hparams.ct_window),
            # normalised before resampling (preprocessing); older checkpoints lack it
            "intensity_first": True,
            "class_names": self.class_names,
            "ignore_index": self.ignore_index,
            # the axes mirrored in training: the only ones test-time mirroring may use
            "mirror_axes": list(self.hparams.flip_axes),
            **(self.scheme.info() if self.scheme else {}),
            **({"label_prior": self.atlas_files} if self.atlas_files else {}),
        }
