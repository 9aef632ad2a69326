"""Data modules and datasets (2D folders, 3D MSD volumes and their 2D slices), sample
fetching."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scseg.lazy import lazy_getattr

__all__ = [
    "Folder2DDataModule",
    "Folder2DDataset",
    "MSD3DDataModule",
    "MSDSlicesDataModule",
    "fetch_sample",
    "prepare_sample",
    "sample_names",
]

_HOMES = {
    "Folder2DDataModule": "scseg.data.folder2d",
    "Folder2DDataset": "scseg.data.folder2d",
    "MSD3DDataModule": "scseg.data.volumes3d",
    "MSDSlicesDataModule": "scseg.data.slices",
    "fetch_sample": "scseg.data.samples",
    "prepare_sample": "scseg.data.samples",
    "sample_names": "scseg.data.samples",
}

if TYPE_CHECKING:
    from scseg.data.folder2d import Folder2DDataModule, Folder2DDataset
    from scseg.data.samples import fetch_sample, prepare_sample, sample_names
    from scseg.data.slices import MSDSlicesDataModule
    from scseg.data.volumes3d import MSD3DDataModule

__getattr__ = lazy_getattr(__name__, _HOMES)
