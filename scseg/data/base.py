"""What the 2D and 3D data modules share: a dataset folder, or a sample fetched into the
cache when no folder is given."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl


class SegmentationDataModule(pl.LightningDataModule):
    """Base of the data modules: ``root`` or ``sample``, classes, channels, patch size."""

    spatial_dims: int

    def __init__(
        self,
        root: str | None,
        sample: str | None,
        classes: int,
        class_names: list[str] | None,
        in_channels: int,
        patch_size: Sequence[int],
    ) -> None:
        super().__init__()
        if root is None and sample is None:
            raise ValueError("give a dataset root or a sample name")
        if len(patch_size) != self.spatial_dims:
            raise ValueError(f"patch_size needs {self.spatial_dims} values, got {patch_size}")
        self.root = Path(root) if root else None
        self.sample = sample
        self.classes = classes
        self.class_names = class_names
        self.in_channels = in_channels
        self.patch_size = tuple(patch_size)

    def prepare_data(self) -> None:
        if self.root is None:
            from scseg.data.samples import prepare_sample

            prepare_sample(self.sample)

    def dataset_root(self) -> Path:
        if self.root is not None:
            return self.root
        from scseg.data.samples import data_dir

        return data_dir() / "datasets" / self.sample
