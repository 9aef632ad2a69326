"""``scseg predict --checkpoint A B ...``: the folds' probabilities averaged."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from scseg.cli import main


def _perturbed(ckpt, path, seed: int):
    """The checkpoint with noise on its weights: another member of the same plan."""
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    generator = torch.Generator().manual_seed(seed)
    for value in checkpoint["state_dict"].values():
        if value.is_floating_point() and value.ndim > 1:
            value.add_(torch.randn(value.shape, generator=generator) * value.std() * 0.5)
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="module")
def scan(data_env, tmp_path_factory):
    """A crop of the real T1, smaller than one window: one window, no blending."""
    from scseg.data.samples import prepare_sample

    image = nib.load(prepare_sample("brain_tissue3d") / "imagesTr" / "icbm_inferior.nii.gz")
    folder = tmp_path_factory.mktemp("scan")
    crop = np.asarray(image.dataobj)[60:110, 80:130, 40:80]
    nib.save(nib.Nifti1Image(crop, image.affine), folder / "t1.nii.gz")
    return folder / "t1.nii.gz"


def _probabilities(checkpoints, scan, out) -> np.ndarray:
    code = main(["predict", "--checkpoint", *map(str, checkpoints), "--input", str(scan),
                 "--output", str(out), "--probabilities", "--roi-size", "48", "48", "48",
                 "--quiet"])  # fmt: skip
    assert code == 0
    return np.asarray(nib.load(out / "t1_probabilities.nii.gz").dataobj)


def test_folds_average_their_probabilities(ckpt_3d, scan, tmp_path) -> None:
    second = _perturbed(ckpt_3d, tmp_path / "b.ckpt", 1)
    a = _probabilities([ckpt_3d], scan, tmp_path / "a")
    b = _probabilities([second], scan, tmp_path / "b")
    both = _probabilities([ckpt_3d, second], scan, tmp_path / "ab")
    assert np.abs(a - b).max() > 0.1  # the members disagree somewhere
    np.testing.assert_allclose(both, (a + b) / 2, atol=1e-5)
    labels = np.asarray(nib.load(tmp_path / "ab" / "t1.nii.gz").dataobj)
    np.testing.assert_array_equal(labels, both.argmax(-1))


def test_checkpoints_of_different_plans_are_refused(ckpt_3d, ckpt_2d, scan, tmp_path, capsys):
    code = main(["predict", "--checkpoint", str(ckpt_3d), str(ckpt_2d), "--input", str(scan),
                 "--output", str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert f"{ckpt_2d}: spatial_dims 2 differs from {ckpt_3d}'s 3" in err
    assert not (tmp_path / "o").exists()
