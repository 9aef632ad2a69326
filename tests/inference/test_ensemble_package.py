"""Packages of an ensemble of configurations: written from each member's checkpoints,
predicting the mean of the members' probabilities on the input grid, and refused in one
line where one network is needed or the members do not fit together."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from scseg.cli import main
from scseg.inference import load_model
from scseg.inference.checkpoint import CheckpointError
from scseg.inference.ensemble import ConfigurationEnsemble
from scseg.inference.package import PackageError, read_package, write_ensemble_package
from scseg.inference.volume import predict_volume

from .test_package import _volume


def test_ensemble_package_predicts_the_mean_of_its_members(
    ckpt_3d, other_3d, data_env, tmp_path
) -> None:
    package = write_ensemble_package({"a": [ckpt_3d], "b": [other_3d]}, tmp_path / "ab.scseg")
    with pytest.raises(PackageError, match=r"ab.scseg: an ensemble of configurations \(a, b\)"):
        read_package(package)
    both = read_package(package, ensembles=True)
    assert isinstance(both, ConfigurationEnsemble) and both.names == ["a", "b"]
    volume = _volume(data_env, tmp_path)
    probs = [np.asarray(predict_volume(load_model(c), volume, probabilities=True)
                        .probabilities.dataobj) for c in (ckpt_3d, other_3d)]  # fmt: skip
    mean = (probs[0] + probs[1]) / 2
    out = tmp_path / "out"
    assert main(["predict", "--model", str(package), "--input", str(volume), "--output",
                 str(out), "--probabilities", "--quiet"]) == 0  # fmt: skip
    written = nib.load(out / "crop_probabilities.nii.gz")
    np.testing.assert_allclose(np.asarray(written.dataobj), mean, atol=1e-6)
    labels = nib.load(out / "crop.nii.gz")
    np.testing.assert_array_equal(np.asarray(labels.dataobj), mean.argmax(-1))
    np.testing.assert_array_equal(labels.affine, nib.load(volume).affine)
    assert not np.array_equal(probs[0].argmax(-1), probs[1].argmax(-1))  # members differ


def test_ensemble_package_refused_where_one_network_is_needed(
    ckpt_3d, ckpt_2d, other_3d, data_env, tmp_path, capsys
) -> None:
    package = write_ensemble_package({"a": [ckpt_3d], "b": [other_3d]}, tmp_path / "ab.scseg")
    volume = _volume(data_env, tmp_path)
    assert main(["attention", "--model", str(package), "--input", str(volume), "--output",
                 str(tmp_path / "maps")]) == 1  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "an ensemble of configurations (a, b)" in err
    assert main(["predict", "--model", str(package), "--input", str(volume), "--output",
                 str(tmp_path / "x"), "--roi-size", "32", "32", "32"]) == 1  # fmt: skip
    assert "--roi-size" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match=r"ensemble member b: classes 2 differs from a's 3"):
        write_ensemble_package({"a": [ckpt_3d], "b": [ckpt_2d]}, tmp_path / "bad.scseg")
    assert not (tmp_path / "bad.scseg").exists()
