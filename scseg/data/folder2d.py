"""2D image/mask folders: ``images/<case>.<ext>`` and ``masks/<case>.png`` (class indices).

Pascal VOC's layout works too: ``image_dir="JPEGImages"``, ``mask_dir="SegmentationClass"``,
``ignore_index=255``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import albumentations as A
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from scseg.data.base import SegmentationDataModule, evaluation_sampler, read_split
from scseg.data.loading import SeededItems
from scseg.io.images import IMAGE_SUFFIXES, read_image, read_mask, standardize, to_unit_range


def find_image(folder: Path, case: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        if (path := folder / f"{case}{suffix}").is_file():
            return path
    raise FileNotFoundError(f"{folder / case}.*: no image for case {case!r}")


class Folder2DDataset(Dataset):
    """Image/mask pairs as ``{"image": (C, H, W) float, "label": (1, H, W) long, "case"}``."""

    def __init__(
        self,
        root: Path,
        cases: Sequence[str],
        image_dir: str,
        mask_dir: str,
        transform: A.Compose | None,
        normalization: str,
        in_channels: int,
        repeats: int = 1,
    ) -> None:
        self.images = [find_image(root / image_dir, c) for c in cases]
        self.masks = [root / mask_dir / f"{c}.png" for c in cases]
        for mask in self.masks:
            if not mask.is_file():
                raise FileNotFoundError(f"{mask}: mask not found")
        self.cases = list(cases)
        self.transform = transform
        self.normalization = normalization
        self.in_channels = in_channels
        self.repeats = repeats

    def __len__(self) -> int:
        return len(self.cases) * self.repeats

    def __getitem__(self, index: int) -> dict:
        i = index % len(self.cases)
        image = read_image(self.images[i])
        mask = read_mask(self.masks[i])
        if image.shape[-1] != self.in_channels:
            raise ValueError(
                f"{self.images[i]}: has {image.shape[-1]} channels, the model takes "
                f"{self.in_channels}"
            )
        if image.shape[:2] != mask.shape:
            raise ValueError(f"{self.masks[i]}: size {mask.shape} differs from its image's")
        # [0, 1] first: photometric augmentation clips to that range; then standardise.
        image = to_unit_range(image, self.normalization)
        if self.transform is not None:
            # albumentations ignores global seeds; seed it from torch's RNG, which
            # seed_everything, DataLoader workers and checkpoints all control.
            self.transform.set_random_seed(int(torch.randint(2**31 - 1, ())))
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        image = standardize(image, self.normalization)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "label": torch.from_numpy(np.ascontiguousarray(mask))[None].long(),
            "case": self.cases[i],
        }


class Folder2DDataModule(SegmentationDataModule):
    """2D segmentation from image/mask folders with a ``split.json``.

    Args:
        root: dataset folder; ``None`` with ``sample`` set uses the fetched sample.
        sample: a sample name (``"nuclei2d"``) to fetch and prepare when ``root`` is None.
        classes: number of classes including background.
        class_names: names for the metric report.
        in_channels: image channels (1 grey, 3 RGB).
        image_dir, mask_dir: sub-folders of ``root``.
        split_file: JSON file with ``train`` and ``val`` case lists.
        patch_size: training crop ``(H, W)``; padded first where an image is smaller.
        normalization: see :func:`scseg.io.images.normalize`.
        ignore_index: mask value that counts for nothing (padding uses it too).
        augment: ``"microscopy"`` (flips, 90-degree rotations, intensity),
            ``"natural"`` (horizontal flip, scale/rotate, colour) or ``"none"``. Intensity
            and colour changes act on the [0, 1] image before standardisation; with
            ``normalization="none"`` (range unknown) only the geometric ones apply.
        repeats: times each training image is visited per epoch (small datasets).
        batch_size, val_batch_size: images a batch; validation images of different
            sizes need ``val_batch_size=1``.
        num_workers: loader processes, kept for the run; ``None``: the cores less one (at
            most 12) when the network trains on a GPU, none on the CPU
            (``SCSEG_NUM_WORKERS`` overrides). Batches are the same with any number
            (:mod:`scseg.data.loading`).
        validate: check every case before training (:mod:`scseg.data.validation`) and stop
            with a report naming the cases; ``False`` skips the checks.
        fold: train on fold K of the split file's ``folds`` (``scseg plan --folds``).
    """

    def __init__(
        self,
        root: str | None = None,
        sample: str | None = None,
        classes: int = 2,
        class_names: list[str] | None = None,
        in_channels: int = 1,
        image_dir: str = "images",
        mask_dir: str = "masks",
        split_file: str = "split.json",
        patch_size: tuple[int, int] = (128, 128),
        normalization: str = "percentile",
        ignore_index: int | None = None,
        augment: str = "microscopy",
        repeats: int = 1,
        batch_size: int = 8,
        val_batch_size: int = 1,
        num_workers: int | None = None,
        validate: bool = True,
        fold: int | None = None,
    ) -> None:
        super().__init__(root, sample, classes, class_names, in_channels, patch_size, fold=fold)
        if augment not in ("microscopy", "natural", "none"):
            raise ValueError(f"augment must be microscopy, natural or none, got {augment!r}")
        self.save_hyperparameters()
        self.ignore_index = ignore_index

    def train_transform(self) -> A.Compose:
        h, w = self.patch_size
        fill_mask = self.hparams.ignore_index or 0
        ops: list = [
            A.PadIfNeeded(h, w, border_mode=0, fill=0, fill_mask=fill_mask),
            A.RandomCrop(h, w),
        ]
        # albumentations clips float images to [0, 1] in these: they need a known range.
        photometric = self.hparams.normalization != "none"
        if self.hparams.augment == "microscopy":
            ops += [A.HorizontalFlip(), A.VerticalFlip(), A.RandomRotate90()]
            if photometric:
                ops.append(A.RandomBrightnessContrast(0.1, 0.1, p=0.5))
        elif self.hparams.augment == "natural":
            ops = [
                A.Affine(scale=(0.5, 2.0), rotate=(-10, 10), fill_mask=fill_mask, p=0.7),
                *ops,
                A.HorizontalFlip(),
            ]
            if photometric:
                ops.append(A.ColorJitter(0.2, 0.2, 0.2, 0.0, p=0.5))
        return A.Compose(ops)

    spatial_dims = 2

    def setup(self, stage: str | None = None) -> None:
        root = self.dataset_root()
        split = read_split(root, self.hparams.split_file, self.fold)
        if self.hparams.validate and stage in (None, "fit"):
            self.validate(root, split)
        common = (
            self.hparams.image_dir,
            self.hparams.mask_dir,
        )
        norm, ch = self.hparams.normalization, self.in_channels
        self.train_set = Folder2DDataset(
            root, split["train"], *common, self.train_transform(), norm, ch, self.hparams.repeats
        )
        self.val_set = Folder2DDataset(root, split["val"], *common, None, norm, ch)
        self.test_set = Folder2DDataset(root, split["test"], *common, None, norm, ch)

    def validate(self, root: Path, split: dict[str, list[str]]) -> None:
        """Raises :class:`~scseg.data.validation.DataValidationError` listing bad cases."""
        from scseg.data.validation import (
            check_image_mask,
            check_intensities,
            check_labels,
            validate_pairs,
        )

        hp = self.hparams

        def files(case: str) -> tuple[Path, Path]:
            return find_image(root / hp.image_dir, case), root / hp.mask_dir / f"{case}.png"

        def load(report, case: str, image_path: Path, mask_path: Path) -> None:
            image, mask = read_image(image_path), read_mask(mask_path)
            check_image_mask(report, case, image, mask)
            if image.shape[-1] != self.in_channels:
                report.add(
                    case, f"{image.shape[-1]} channel(s), the config says {self.in_channels}"
                )
            check_intensities(report, case, image)
            check_labels(report, case, mask, self.classes, hp.ignore_index)

        validate_pairs(root, split, files, load)

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool) -> DataLoader:
        # Drop a ragged last batch (BatchNorm fails on one sample) only where each process
        # still gets a full batch: under DDP it sees 1/world_size of the dataset.
        world = self.trainer.world_size if self.trainer is not None else 1
        per_process = -(-len(dataset) // world)
        seeded = self.training_sampler(dataset) if shuffle else None
        return DataLoader(
            SeededItems(dataset) if shuffle else dataset,
            batch_size=batch_size,
            sampler=seeded or evaluation_sampler(dataset),
            drop_last=shuffle and per_process > batch_size,
            **self.loader_options(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.hparams.batch_size, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.hparams.val_batch_size, False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.hparams.val_batch_size, False)

    def info(self) -> dict:
        """Plain settings that inference needs, stored in checkpoints."""
        return {
            "spatial_dims": 2,
            "patch_size": list(self.patch_size),
            "normalization": self.hparams.normalization,
            "class_names": self.class_names,
            # mirrored in training (rows 0, columns 1): what test-time mirroring may use
            "mirror_axes": {"microscopy": [0, 1], "natural": [1]}.get(self.hparams.augment, []),
        }
