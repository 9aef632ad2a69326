"""Label-prior training data: the training case is its own prior, which the residual warp
leaves in place while image and labels move together; other cases get the atlas
registered to them."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from scseg.data import MSD3DDataModule
from scseg.evaluation import mean_dice

from ..fakes import ellipsoid_dataset


@pytest.fixture
def ellipsoids(tmp_path):
    return ellipsoid_dataset(tmp_path / "ellipsoids", {"atlas": 0.0, "moved": 9.0})


def _module(root, tmp_path, **kw) -> MSD3DDataModule:
    options = dict(patch_size=(40, 40, 40), intensity="none", label_prior=True,
                   samples_per_volume=1, flip_axes=(), spatial_prob=0.0,
                   intensity_augmentation="none", cache_dir=str(tmp_path / "cache"),
                   classes=3)  # fmt: skip
    return MSD3DDataModule(str(root), **{**options, **kw})


def test_the_residual_warp_moves_image_and_labels_but_not_the_prior(ellipsoids, tmp_path):
    strong = {"elastic_magnitude": (600.0, 800.0), "elastic_sigma": (4.0, 5.0), "shift": 3.0}
    dm = _module(ellipsoids, tmp_path, prior_warp=strong)
    dm.setup("fit")
    torch.manual_seed(0)
    item = dm.train_set[0][0]
    image, prior, labels = item["image"][0], item["image"][1], item["label"][0]
    assert item["image"].shape[0] == 2  # image, then the prior's labels
    original = np.asarray(nib.load(ellipsoids / "labelsTr" / "atlas.nii.gz").dataobj)
    np.testing.assert_array_equal(prior.numpy(), original)  # the prior stays where it was
    moved = labels.numpy() != original
    assert moved.mean() > 0.01  # image and labels were warped
    # the image went with its labels: inside the warped ellipsoid bright, outside dim
    inside = image[labels > 0].numpy()
    outside = image[labels == 0].numpy()
    assert np.median(inside) > 90 and np.median(outside) < 20
    assert set(np.unique(labels.numpy())) <= {0, 1, 2}  # nearest: labels stay labels


def test_validation_cases_get_the_atlas_registered_once(ellipsoids, tmp_path, monkeypatch):
    import scseg.atlas.priors as priors

    calls = []
    real = priors.register_labels
    monkeypatch.setattr(priors, "register_labels",
                        lambda *a: calls.append(a) or real(*a))  # fmt: skip
    dm = _module(ellipsoids, tmp_path)
    dm.setup("fit")
    image = dm.val_set[0]["image"]
    truth = dm.val_set[0]["label"][0]
    assert image.shape[0] == 2 and len(calls) == 1
    prior = image[1]
    atlas = np.asarray(nib.load(ellipsoids / "labelsTr" / "atlas.nii.gz").dataobj)
    # the registered atlas fits the moved case far better than the atlas as it lies
    assert mean_dice(truth.numpy(), prior.numpy()) > 0.8 > mean_dice(truth.numpy(), atlas) + 0.3
    assert dm.info()["label_prior"]["image"].endswith("atlas.nii.gz")
    assert dm.info()["label_prior"]["registration"] == "affine"
    again = _module(ellipsoids, tmp_path)
    again.setup("fit")
    assert len(calls) == 1  # kept in cache_dir, not registered anew


def test_registered_copies_train_on_the_prior_that_prediction_gives(
    ellipsoids, tmp_path, monkeypatch
):
    import scseg.atlas.priors as priors

    calls = []
    real = priors.register_labels
    monkeypatch.setattr(priors, "register_labels",
                        lambda *a: calls.append(a) or real(*a))  # fmt: skip
    dm = _module(ellipsoids, tmp_path, registered_copies=2)
    dm.setup("fit")
    assert len(dm.train_set) == 2 and len(calls) == 3  # two copies and the validation case
    original = np.asarray(nib.load(ellipsoids / "labelsTr" / "atlas.nii.gz").dataobj)
    for k in range(2):
        item = dm.train_set[k][0]
        image, prior, labels = item["image"][0], item["image"][1], item["label"][0].numpy()
        assert mean_dice(labels, original) < 0.8  # the copy moved away from the atlas ...
        assert mean_dice(labels, prior.numpy()) > 0.85  # ... and the registration followed
        assert np.median(image[labels > 0].numpy()) > 90  # the image moved with its labels
        assert np.median(image[labels == 0].numpy()) < 20
    assert dm.train_set[0][0]["label"].ne(dm.train_set[1][0]["label"]).any()  # two draws
    again = _module(ellipsoids, tmp_path, registered_copies=2)
    again.setup("fit")
    assert len(calls) == 3  # copies and their priors are kept in cache_dir
    with pytest.raises(ValueError, match="registered_copies must be 0 or more"):
        _module(ellipsoids, tmp_path, registered_copies=-1)


def test_a_model_and_data_that_disagree_are_refused(ellipsoids, tmp_path, capsys) -> None:
    from scseg.cli import main

    args = ["fit", "--model.arch", "unet", "--model.spatial_dims", "3", "--model.classes", "3",
            "--model.model_options", '{"channels": [8, 16]}', "--data",
            "scseg.data.MSD3DDataModule", "--data.root", str(ellipsoids), "--data.classes",
            "3", "--data.label_prior", "true", "--data.patch_size", "[16, 16, 16]",
            "--data.cache_dir", str(tmp_path / "cache"), "--trainer.fast_dev_run", "1",
            "--trainer.default_root_dir", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "data.label_prior=True but model.model_options.label_prior=False" in err
    assert "Traceback" not in err
