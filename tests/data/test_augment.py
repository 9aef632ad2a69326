"""Intensity augmentation (:mod:`scseg.data.augment`): nothing at probability 0, the image
changed and the label map untouched when every transform fires, in 2D and 3D; the data
modules take it by name."""

from __future__ import annotations

import pytest
import torch
from monai import transforms as T

from scseg.data.augment import INTENSITY_AUGMENTATIONS, intensity_augmentation


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
