"""``scseg predict`` with a model that refines a registered atlas: it registers the atlas
it was trained with (or the one given) to each input, and writes labels on the input's own
grid; what it cannot use is named in one line."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from scseg.cli import main
from scseg.evaluation import mean_dice

from ..fakes import ellipsoid_dataset


@pytest.fixture(scope="module")
def prior_checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("atlas-prior")
    root = ellipsoid_dataset(tmp / "ellipsoids", {"atlas": 0.0, "moved": 9.0})
    args = ["fit", "--model.arch", "unet", "--model.spatial_dims", "3", "--model.classes", "3",
            "--model.model_options", '{"channels": [8, 16], "label_prior": true}',
            "--data", "scseg.data.MSD3DDataModule", "--data.root", str(root),
            "--data.classes", "3", "--data.label_prior", "true", "--data.patch_size",
            "[16, 16, 16]", "--data.intensity", "zscore", "--data.cache_dir",
            str(tmp / "cache"), "--trainer.max_epochs", "1", "--trainer.default_root_dir",
            str(tmp / "run")]  # fmt: skip
    assert main(args) == 0
    return tmp / "run" / "checkpoints" / "last.ckpt", root


def test_predict_registers_the_atlas_and_keeps_the_input_grid(prior_checkpoint, tmp_path):
    checkpoint, root = prior_checkpoint
    # the subject on a grid of its own: another origin and voxel order (LAS)
    source = nib.load(root / "imagesTr" / "moved.nii.gz")
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = source.shape[0] - 1
    affine = source.affine @ flip
    affine[:3, 3] += 3.0
    subject = tmp_path / "subject.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(source.dataobj)[::-1].copy(), affine), subject)
    assert main(["predict", "--checkpoint", str(checkpoint), "--input", str(subject),
                 "--output", str(tmp_path / "out"), "--quiet"]) == 0  # fmt: skip
    written = nib.load(tmp_path / "out" / "subject.nii.gz")
    np.testing.assert_allclose(written.affine, affine)
    assert written.shape == source.shape
    truth = np.asarray(nib.load(root / "labelsTr" / "moved.nii.gz").dataobj)[::-1]
    atlas = np.asarray(nib.load(root / "labelsTr" / "atlas.nii.gz").dataobj)[::-1]
    predicted = np.asarray(written.dataobj)
    assert mean_dice(truth, predicted) > 0.75 > mean_dice(truth, atlas) + 0.2


def test_a_missing_atlas_or_a_model_without_one_is_named(prior_checkpoint, ckpt_3d, tmp_path,
                                                         capsys):  # fmt: skip
    checkpoint, root = prior_checkpoint
    subject = root / "imagesTr" / "moved.nii.gz"
    gone = tmp_path / "gone.nii.gz"
    code = main(["predict", "--checkpoint", str(checkpoint), "--input", str(subject),
                 "--output", str(tmp_path / "a"), "--atlas", str(gone), str(gone)])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert f"{gone}: the model's atlas image is not on this machine" in err
    assert "Traceback" not in err and not (tmp_path / "a" / "moved.nii.gz").exists()
    code = main(["predict", "--checkpoint", str(ckpt_3d), "--input", str(subject), "--output",
                 str(tmp_path / "b"), "--atlas", str(subject), str(subject)])  # fmt: skip
    assert code != 0
    err = capsys.readouterr().err
    assert "does not refine an atlas" in err and "Traceback" not in err


def test_attention_figures_of_an_atlas_prior_model(prior_checkpoint, tmp_path) -> None:
    checkpoint, root = prior_checkpoint
    subject = root / "imagesTr" / "moved.nii.gz"
    args = ["attention", "--checkpoint", str(checkpoint), "--input", str(subject), "--output",
            str(tmp_path / "maps")]  # fmt: skip
    assert main(args) == 0
    assert list((tmp_path / "maps").glob("*.png"))
