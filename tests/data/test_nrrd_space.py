"""NRRD spaces spelled as the spec allows (``LPS``, ``left-posterior-superior``) read alike."""

from __future__ import annotations

import nrrd
import numpy as np
import pytest
import torch

from scseg.inference import LoadedModel
from scseg.inference.volume import predict_volume, preprocess_volume
from scseg.io.nrrd import nrrd_affine, to_ras
from scseg.models import create_model


def _respell(src, dest, space: str) -> None:
    data, header = nrrd.read(str(src))
    assert header["space"] == "left-posterior-superior"
    header["space"] = space
    nrrd.write(str(dest), data, header)
    assert nrrd.read_header(str(dest))["space"] == space


@pytest.fixture
def respelled(raw_samples, tmp_path):
    src = raw_samples / "tumour3d" / "brain1_image.nrrd"
    _respell(src, tmp_path / "full.nrrd", "left-posterior-superior")
    _respell(src, tmp_path / "short.nrrd", "LPS")
    return tmp_path / "full.nrrd", tmp_path / "short.nrrd"


def _random_model() -> LoadedModel:
    torch.manual_seed(0)
    net = create_model("unet", spatial_dims=3, in_channels=1, classes=3, channels=(4, 8))
    info = {"patch_size": [32, 32, 16], "spacing": [1.5, 1.5, 6.5], "intensity": "zscore"}
    return LoadedModel(net.eval(), 3, 1, 3, {}, info)


def test_lps_abbreviation_gives_the_same_network_input_and_labels(respelled):
    full, short = respelled
    model = _random_model()
    a = preprocess_volume(model, full)[1]["image"]
    b = preprocess_volume(model, short)[1]["image"]
    np.testing.assert_array_equal(a.affine.numpy(), b.affine.numpy())
    np.testing.assert_array_equal(a.numpy(), b.numpy())  # not mirrored in x and y
    labels_full = np.asarray(predict_volume(model, full).labels.dataobj)
    labels_short = np.asarray(predict_volume(model, short).labels.dataobj)
    assert len(np.unique(labels_full)) > 1  # the random network does not predict a constant
    np.testing.assert_array_equal(labels_full, labels_short)


def test_spaces_and_unknown_space():
    header = {"space directions": np.diag([0.5, 0.5, 2.0]), "space origin": np.array([1, 2, 3])}
    for space, signs in (("RAS", (1, 1)), ("LAS", (-1, 1)), ("LPS", (-1, -1)), (None, (-1, -1))):
        affine = nrrd_affine({**header, "space": space} if space else header)
        assert affine[0, 0] == 0.5 * signs[0] and affine[1, 1] == 0.5 * signs[1]
        assert affine[0, 3] == 1 * signs[0] and affine[2, 3] == 3
    with pytest.raises(ValueError, match="unsupported NRRD space 'scanner-xyz'"):
        to_ras("scanner-xyz")


def test_detached_header_reads_like_the_attached_file(respelled, tmp_path):
    full, _ = respelled
    data, header = nrrd.read(str(full))
    nrrd.write(str(tmp_path / "detached.nhdr"), data, header, detached_header=True)
    model = _random_model()
    a = preprocess_volume(model, full)[1]["image"]
    b = preprocess_volume(model, tmp_path / "detached.nhdr")[1]["image"]
    np.testing.assert_array_equal(a.numpy(), b.numpy())
