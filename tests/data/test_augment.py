"""Intensity augmentation (:mod:`scseg.data.augment`): nothing at probability 0, the image
changed and the label map untouched when every transform fires, in 2D and 3D; the data
modules take it by name."""

from __future__ import annotations

import pytest
import torch
from monai import transforms as T

from scseg.data.augment import INTENSITY_AUGMENTATIONS, intensity_augmentation, transform_region


def _item(spatial_dims: int) -> dict:
    torch.manual_seed(0)
    shape = (1, *[24] * spatial_dims)
    image = torch.rand(shape) * 2 + 1  # positive, as after z-scoring within a brain
    label = torch.randint(0, 4, shape).float()
    return {"image": image, "label": label}


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("kind", ["light", "nnunet"])
def test_probability_zero_changes_nothing(kind, spatial_dims) -> None:
    item = _item(spatial_dims)
    out = T.Compose(intensity_augmentation("image", kind, spatial_dims, probability=0.0))(
        {k: v.clone() for k, v in item.items()}
    )
    assert torch.equal(torch.as_tensor(out["image"]), item["image"])
    assert torch.equal(torch.as_tensor(out["label"]), item["label"])


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("kind", ["light", "nnunet"])
def test_every_transform_changes_the_image_and_never_the_labels(kind, spatial_dims) -> None:
    item = _item(spatial_dims)
    for transform in intensity_augmentation("image", kind, spatial_dims, probability=1e6):
        transform.set_random_state(seed=3)
        out = transform({k: v.clone() for k, v in item.items()})
        name = type(transform).__name__
        assert not torch.allclose(torch.as_tensor(out["image"]).float(), item["image"]), name
        assert torch.equal(torch.as_tensor(out["label"]), item["label"]), name


def test_nnunet_set_has_nnunets_seven_transforms() -> None:
    names = [type(t).__name__ for t in intensity_augmentation("image", "nnunet", 3)]
    assert names == ["RandGaussianNoised", "RandGaussianSmoothd", "RandScaleIntensityd",
                     "RandScaleIntensityFixedMeand", "RandSimulateLowResolutiond",
                     "RandAdjustContrastd", "RandAdjustContrastd"]  # fmt: skip
    chances = [t.prob for t in intensity_augmentation("image", "nnunet", 3)]
    assert chances == [0.1, 0.1, 0.15, 0.15, 0.125, 0.1, 0.3]
    assert intensity_augmentation("image", "none", 3) == []


def test_an_unknown_name_is_refused() -> None:
    with pytest.raises(ValueError, match="intensity_augmentation must be one of light, nnunet"):
        intensity_augmentation("image", "strong", 3)
    assert INTENSITY_AUGMENTATIONS == ("light", "nnunet", "none")


def test_transform_region_covers_the_turned_patch() -> None:
    assert transform_region([64, 64, 48], [0.0, 0.0, 0.0], 1.0) == [64, 64, 48]
    # a quarter turn in-plane swaps a 64 x 32 patch's sides: both must be covered
    assert transform_region([64, 32], [1.5708], 1.0) >= [64, 64]
    # turns about axis 2 leave axis 2 alone; zoom down to 0.85 widens every axis
    assert transform_region([64, 64, 48], [0.0, 0.0, 0.26], 1.0)[2] == 48
    assert transform_region([40, 40, 40], [0.0, 0.0, 0.0], 0.7) == [48, 48, 48]  # 40 / 0.85


def _module(margin: bool):
    from scseg.data import MSD3DDataModule

    return MSD3DDataModule(
        root=".", classes=2, patch_size=(16, 16, 16), rotation=(0.5, 0.5, 0.5), zoom=(0.9, 1.1),
        spatial_prob=1.0, foreground_ratio=1.0, samples_per_volume=1, flip_axes=(),
        intensity_augmentation="none", spatial_margin=margin, validate=False,
    )  # fmt: skip


def _patches(margin: bool, image: torch.Tensor, label: torch.Tensor, seeds: int = 6):
    for seed in range(seeds):
        transform = T.Compose(_module(margin)._patch_augmentation())
        transform.set_random_state(seed=seed)
        (patch,) = transform({"image": image.clone(), "label": label.clone()})
        yield torch.as_tensor(patch["image"]), torch.as_tensor(patch["label"])


@pytest.mark.parametrize("margin", [False, True])
def test_turned_patches_move_image_and_labels_together(margin) -> None:
    image, label = torch.ones(1, 16, 16, 16), torch.zeros(1, 16, 16, 16)  # one patch
    image[0, 2:5, 10:13, 3:6] = 9.0  # an off-centre marker, its label on the same voxels
    label[0, 2:5, 10:13, 3:6] = 1.0
    moved = 0.0
    for patch_image, patch_label in _patches(margin, image, label):
        assert patch_image.shape == patch_label.shape == (1, 16, 16, 16)
        marker = torch.nonzero(patch_image[0] > 5).float().mean(0)
        labelled = torch.nonzero(patch_label[0] > 0).float().mean(0)
        assert (labelled - marker).abs().max() <= 1.0, (marker, labelled)
        moved = max(moved, float((marker - torch.tensor([3.0, 11.0, 4.0])).abs().max()))
    assert moved > 1.5  # the turns did move the marker (from where it was in the volume)


@pytest.mark.parametrize("margin", [False, True])
def test_only_the_margin_keeps_zero_filled_corners_out(margin) -> None:
    image, label = torch.ones(1, 64, 64, 64), torch.zeros(1, 64, 64, 64)
    label[0, 30:34, 30:34, 30:34] = 1.0
    zeros = [int((i == 0).sum()) for i, _ in _patches(margin, image, label)]
    assert (max(zeros) == 0) if margin else (min(zeros) > 0)


def test_slices_turn_a_larger_region_when_asked() -> None:
    from scseg.data import MSDSlicesDataModule

    for margin in (False, True):
        module = MSDSlicesDataModule(root=".", classes=2, patch_size=(32, 32),
                                     spatial_margin=margin, intensity_augmentation="none",
                                     validate=False)  # fmt: skip
        transforms = module._slice_augmentation()
        names = [type(t).__name__ for t in transforms]
        assert ("CenterSpatialCropd" in names) is margin
        crop = transforms[names.index("RandSpatialCropd")]
        assert list(crop.cropper.roi_size) == ([44, 44] if margin else [32, 32])


def _centre_share(rest: str, ratio: float, draws: int = 400) -> float:
    """Share of one-voxel patches that land on foreground, in a volume 90 % foreground."""
    from scseg.data.augment import patch_crop

    label = torch.zeros(1, 20, 20, 20)
    label[:, :18] = 1
    crop = patch_crop(("image", "label"), (1, 1, 1), ratio, 1, rest)
    crop.set_random_state(0)
    hits = []
    for _ in range(draws):
        (patch,) = crop({"image": label * 5.0, "label": label.clone()})
        assert torch.equal(patch["image"], patch["label"] * 5.0)  # image and labels together
        hits.append(float(patch["label"].item()))
    return sum(hits) / draws


@pytest.mark.parametrize(
    ("rest", "ratio", "expected"),
    [("background", 0.33, 0.33), ("anywhere", 0.33, 0.33 + 0.67 * 0.9), ("anywhere", 0.0, 0.9)],
)
def test_patches_not_oversampled_are_centred_as_asked(rest, ratio, expected) -> None:
    # background: the rest never lands on foreground; anywhere: as often as it covers
    assert _centre_share(rest, ratio) == pytest.approx(expected, abs=0.06)


def test_an_unknown_rest_centre_is_refused() -> None:
    from scseg.data import MSD3DDataModule
    from scseg.data.augment import patch_crop

    with pytest.raises(ValueError, match="rest_centres must be one of"):
        patch_crop(("image", "label"), (4, 4, 4), 0.5, 1, "edges")
    with pytest.raises(ValueError, match="rest_centres must be one of"):
        MSD3DDataModule("unused", rest_centres="edges")
