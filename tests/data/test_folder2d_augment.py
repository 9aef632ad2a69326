"""Augmentation keeps the normalised intensity range (photometric ops before standardising)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from matplotlib import cbook
from PIL import Image

from scseg.data import Folder2DDataModule
from scseg.io.images import _IMAGENET_MEAN, _IMAGENET_STD, normalize, read_image


@pytest.fixture
def photo_dataset(tmp_path):
    """A real photograph (matplotlib's sample of Grace Hopper) as a one-case 2D folder."""
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        photo = Image.open(f).convert("RGB").resize((160, 128))
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for case, image in (("hopper", photo), ("hopper_mirrored", photo.transpose(0))):
        image.save(tmp_path / "images" / f"{case}.png")
        Image.fromarray(np.zeros((128, 160), np.uint8)).save(tmp_path / "masks" / f"{case}.png")
    split = {"train": ["hopper"], "val": ["hopper_mirrored"]}
    (tmp_path / "split.json").write_text(json.dumps(split))
    return tmp_path


def test_natural_augmentation_keeps_imagenet_range(photo_dataset):
    dm = Folder2DDataModule(
        root=str(photo_dataset), in_channels=3, patch_size=(96, 96), normalization="imagenet",
        augment="natural", repeats=60, validate=False,
    )  # fmt: skip
    dm.setup("fit")
    torch.manual_seed(0)
    lo = (0 - _IMAGENET_MEAN) / _IMAGENET_STD
    hi = (1 - _IMAGENET_MEAN) / _IMAGENET_STD
    clipped = 0
    for i in range(len(dm.train_set)):
        image = dm.train_set[i]["image"].numpy()
        per_channel_min = image.reshape(3, -1).min(1)
        per_channel_max = image.reshape(3, -1).max(1)
        # inside what standardising [0, 1] can give, channel by channel
        assert (per_channel_min >= lo - 1e-4).all() and (per_channel_max <= hi + 1e-4).all()
        # clipped to [0, 1] after standardising: the old order's failure
        clipped += bool(image.min() >= 0.0 and image.max() <= 1.0)
    assert clipped == 0
    # validation sees the same normalisation as prediction
    val = dm.val_set[0]["image"].numpy().transpose(1, 2, 0)
    expected = normalize(read_image(photo_dataset / "images" / "hopper_mirrored.png"), "imagenet")
    np.testing.assert_allclose(val, expected, atol=1e-6)


def test_no_photometric_ops_without_a_known_range(photo_dataset):
    dm = Folder2DDataModule(root=str(photo_dataset), in_channels=3, normalization="none",
                            augment="natural", validate=False)  # fmt: skip
    names = [type(op).__name__ for op in dm.train_transform()]
    assert "ColorJitter" not in names and "HorizontalFlip" in names
    dm = Folder2DDataModule(root=str(photo_dataset), in_channels=3, normalization="imagenet",
                            augment="natural", validate=False)  # fmt: skip
    assert "ColorJitter" in [type(op).__name__ for op in dm.train_transform()]


@pytest.mark.parametrize(("augment", "axes"), [("microscopy", [0, 1]), ("natural", [1]),
                                               ("none", [])])  # fmt: skip
def test_checkpoints_record_the_mirrors_of_training(augment, axes) -> None:
    """Test-time mirroring uses these only: a photograph is never turned upside down."""
    dm = Folder2DDataModule("unused", augment=augment)
    assert dm.info()["mirror_axes"] == axes
