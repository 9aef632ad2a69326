"""Label schemes: the ignore label through resampling and augmentation, regions as unions
of values and as separate masks, and the one-line errors for bad ``dataset.json`` labels."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from monai import transforms as T

from scseg.data.labels import (
    LabelSchemeError,
    RegionMasksd,
    ShiftAnnotationd,
    check_region_values,
    label_scheme,
    region_masks,
    regions_to_label_map,
)

IGNORE = 3
NAMES = {"background": 0, "grey": 1, "white": 2}


def test_nnunet_labels_give_classes_ignore_and_regions() -> None:
    sparse = label_scheme({"labels": {**NAMES, "ignore": IGNORE}}, "d.json")
    assert sparse.names == ("background", "grey", "white") and sparse.ignore == IGNORE
    assert not sparse.multilabel
    regions = label_scheme(
        {"labels": {"background": 0, "brain": [1, 2], "white": [2]}, "regions_class_order": [1, 2]},
        "d.json",
    )
    assert regions.names == ("brain", "white") and regions.regions == ((1, 2), (2,))
    assert regions.multilabel and regions.order == (1, 2)
    masks = label_scheme({"region_masks": ["left", "cortex"]}, "d.json")
    assert masks.masks and masks.channels == 2
    assert label_scheme({"labels": {"0": "background", "1": "a"}}, "d.json") is None  # MSD


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"labels": {**NAMES, "ignore": 2}}, "labels.ignore = 2 collides with class 'white'"),
        ({"labels": {"background": 0, "a": 5, "ignore": 3}}, "ignore = 3 must be the highest"),
        ({"labels": {"background": 0, "a": [1, "x"]}}, "d.json: labels.a must list label values"),
        ({"labels": {"background": 0, "a": [1]}, "regions_class_order": [1, 2]},
         "d.json: regions_class_order must give one value per region"),
        ({"labels": {"background": 0, "a": [1], "ignore": 2}}, "labels.ignore with region labels"),
    ],
)  # fmt: skip
def test_bad_labels_are_one_line_naming_file_and_key(meta, expected) -> None:
    with pytest.raises(LabelSchemeError) as err:
        label_scheme(meta, "d.json")
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_regions_naming_missing_values_are_refused() -> None:
    scheme = label_scheme({"labels": {"background": 0, "tumour": [1, 7]}}, "d.json")
    with pytest.raises(
        LabelSchemeError, match=r"d.json: labels.tumour names label value\(s\) \[7\]"
    ):
        check_region_values(scheme, {0, 1}, "d.json")
    check_region_values(scheme, {0, 1, 4, 7}, "d.json")  # 4: in no region, background


def _sparse_volume() -> tuple[torch.Tensor, torch.Tensor]:
    """A 32^3 image with a bright marker cube, labelled 1 there, 2 in a slab, and every
    voxel outside two annotated planes set to the ignore value."""
    label = torch.zeros(1, 32, 32, 32)
    label[0, :, :, 20:] = 2
    label[0, 8:14, 18:24, 4:10] = 1
    image = label.clone()
    image[0, 8:14, 18:24, 4:10] = 20.0
    annotated = torch.zeros(1, 32, 32, 32, dtype=torch.bool)
    annotated[0, 10] = True
    annotated[0, :, 20] = True
    annotated[0, 8:14, 18:24, 4:10] = True  # the marker is annotated
    return image, torch.where(annotated, label, float(IGNORE))


def test_ignore_survives_every_patch_augmentation_as_itself() -> None:
    from scseg.data import MSD3DDataModule

    image, label = _sparse_volume()
    for margin in (False, True):
        module = MSD3DDataModule(root=".", classes=3, patch_size=(16, 16, 16), validate=False,
                                 rotation=(0.5, 0.5, 0.5), zoom=(0.7, 1.4), spatial_prob=1.0,
                                 intensity_augmentation="none", spatial_margin=margin,
                                 samples_per_volume=4)  # fmt: skip
        module.ignore_index = IGNORE
        augment = T.Compose(module._patch_augmentation())
        for seed in range(6):
            augment.set_random_state(seed)
            for patch in augment({"image": image.clone(), "label": label.clone()}):
                values = set(torch.unique(patch["label"]).tolist())
                assert values <= {0.0, 1.0, 2.0, float(IGNORE)}, values
                marker = patch["image"][0] > 17  # the marker moved as its labels did
                if marker.sum() > 8:
                    inside = patch["label"][0][marker]
                    assert (inside == 1).float().mean() > 0.9
                # every patch holds annotation: the crop centres on annotated voxels
                assert (patch["label"] != IGNORE).any()


def test_padding_and_turned_corners_are_not_annotated() -> None:
    """Zero fill of a spatial transform means 'not annotated', never background."""
    from scseg.data import MSD3DDataModule

    image, label = torch.ones(1, 8, 8, 8), torch.ones(1, 8, 8, 8)  # all annotated class 1
    module = MSD3DDataModule(root=".", classes=3, patch_size=(16, 16, 16), validate=False,
                             rotation=(0.0, 0.0, 0.8), spatial_prob=1.0,
                             intensity_augmentation="none")  # fmt: skip
    module.ignore_index = IGNORE
    augment = T.Compose(module._patch_augmentation())
    augment.set_random_state(0)
    patch = augment({"image": image, "label": label})[0]
    values = set(torch.unique(patch["label"]).tolist())
    assert values == {1.0, float(IGNORE)}  # padded: ignore, not background 0


def test_a_volume_without_annotation_still_gives_patches() -> None:
    from scseg.data import MSD3DDataModule

    image, label = torch.ones(1, 20, 20, 20), torch.full((1, 20, 20, 20), float(IGNORE))
    module = MSD3DDataModule(root=".", classes=3, patch_size=(8, 8, 8), validate=False,
                             intensity_augmentation="none")  # fmt: skip
    module.ignore_index = IGNORE
    augment = T.Compose(module._patch_augmentation())
    augment.set_random_state(0)
    patches = augment({"image": image, "label": label})
    assert all(set(torch.unique(p["label"]).tolist()) == {float(IGNORE)} for p in patches)


def test_slice_augmentation_keeps_ignore_as_itself() -> None:
    from scseg.data import MSDSlicesDataModule

    _, label = _sparse_volume()
    module = MSDSlicesDataModule(root=".", classes=3, patch_size=(40, 40), validate=False,
                                 spatial_margin=True, intensity_augmentation="none")  # fmt: skip
    module.ignore_index = IGNORE
    augment = T.Compose(module._slice_augmentation())
    for seed in range(8):
        augment.set_random_state(seed)
        item = augment({"image": label[:, 10].clone(), "label": label[:, 10].clone()})
        assert set(torch.unique(item["label"]).tolist()) <= {0.0, 1.0, 2.0, float(IGNORE)}
        # outside the 32 x 32 slice (padding) the label is 'not annotated'
        assert item["label"][0, 0, 0] == IGNORE


def test_resampling_keeps_ignore_as_itself(tmp_path) -> None:
    from scseg.data.volumes3d import preprocessing

    _, label = _sparse_volume()
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    for name, data in (("image", label[0].numpy()), ("label", label[0].numpy())):
        nib.save(nib.Nifti1Image(data.astype(np.float32), affine), tmp_path / f"{name}.nii.gz")
    pre = T.Compose(preprocessing(("image", "label"), (1.7, 1.3, 2.1), "none"))
    out = pre({"image": str(tmp_path / "image.nii.gz"), "label": str(tmp_path / "label.nii.gz")})
    assert set(torch.unique(out["label"]).tolist()) == {0.0, 1.0, 2.0, float(IGNORE)}


def test_shift_round_trips() -> None:
    label = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    encoded = ShiftAnnotationd("label", IGNORE)({"label": label})
    assert encoded["label"].tolist() == [[1.0, 2.0, 3.0, 0.0]]
    decoded = ShiftAnnotationd("label", IGNORE, decode=True)(encoded)
    assert decoded["label"].tolist() == label.tolist()


def test_regions_as_unions_and_as_masks_train_to_the_same_targets(tmp_path) -> None:
    """A label map with region values, and the same regions as a 4D file of masks, go
    through the data module's preprocessing to the same target tensor."""
    from scseg.data.volumes3d import preprocessing

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (12, 10, 8)).astype(np.uint8)
    regions = [[1, 2, 3], [2, 3], [3]]
    masks = np.stack([np.isin(labels, r) for r in regions], -1).astype(np.uint8)
    affine = np.diag([1.2, 1.0, 1.5, 1.0])
    image = rng.normal(size=labels.shape).astype(np.float32)
    for name, data in (("image", image), ("values", labels), ("masks", masks)):
        nib.save(nib.Nifti1Image(data, affine), tmp_path / f"{name}.nii.gz")
    pre = preprocessing(("image", "label"), (1.0, 1.0, 1.0), "zscore")
    by_values = T.Compose([*pre, RegionMasksd("label", regions)])
    from_values = by_values({"image": str(tmp_path / "image.nii.gz"),
                             "label": str(tmp_path / "values.nii.gz")})["label"]  # fmt: skip
    from_masks = T.Compose(pre)({"image": str(tmp_path / "image.nii.gz"),
                                 "label": str(tmp_path / "masks.nii.gz")})["label"]  # fmt: skip
    assert from_values.shape == from_masks.shape == (3, 14, 10, 12)
    assert torch.equal(torch.as_tensor(from_values).float(), torch.as_tensor(from_masks).float())


def test_region_masks_and_label_map_by_order() -> None:
    labels = torch.tensor([[[0, 1, 2, 3]]])
    masks = region_masks(labels, [[1, 2, 3], [2, 3], [3]])
    assert masks.tolist() == [[[0, 1, 1, 1]], [[0, 0, 1, 1]], [[0, 0, 0, 1]]]
    assert regions_to_label_map(masks.numpy(), [1, 2, 3]).tolist() == [[0, 1, 2, 3]]


def _dataset(root, labels_meta: dict, label_arrays: list[np.ndarray], extra: dict | None = None):
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    training = []
    for i, label in enumerate(label_arrays):
        affine = np.eye(4)
        image = rng.normal(size=label.shape[:3]).astype(np.float32) + 1
        nib.save(nib.Nifti1Image(image, affine), root / "imagesTr" / f"c{i}.nii.gz")
        nib.save(nib.Nifti1Image(label, affine), root / "labelsTr" / f"c{i}.nii.gz")
        training.append({"image": f"./imagesTr/c{i}.nii.gz", "label": f"./labelsTr/c{i}.nii.gz"})
    meta = {"channel_names": {"0": "MR"}, "labels": labels_meta, "training": training}
    (root / "dataset.json").write_text(json.dumps({**meta, **(extra or {})}))
    (root / "split.json").write_text(json.dumps({"train": ["c0"], "val": ["c1"]}))
    return root


def test_masks_in_single_label_mode_are_refused_naming_the_case(tmp_path) -> None:
    from scseg.data import MSD3DDataModule
    from scseg.data.validation import DataValidationError

    masks = np.zeros((16, 16, 16, 2), np.uint8)
    masks[2:10, ..., 0] = 1
    masks[5:12, ..., 1] = 1
    root = _dataset(tmp_path / "d", {"background": 0, "a": 1}, [masks, masks])
    module = MSD3DDataModule(root=str(root), classes=2, patch_size=(16, 16, 16))
    with pytest.raises(DataValidationError, match="c0: label file holds 2 masks"):
        module.setup("fit")
