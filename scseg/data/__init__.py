"""Data modules and datasets (2D folders, 3D MSD volumes), sample fetching."""

from scseg.data.folder2d import Folder2DDataModule, Folder2DDataset
from scseg.data.samples import fetch_sample, prepare_sample, sample_names
from scseg.data.volumes3d import MSD3DDataModule

__all__ = [
    "Folder2DDataModule",
    "Folder2DDataset",
    "MSD3DDataModule",
    "fetch_sample",
    "prepare_sample",
    "sample_names",
]
