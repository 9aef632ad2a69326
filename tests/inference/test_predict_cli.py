"""``scseg predict``: real checkpoints, many files, bad input, atomic and safe outputs."""

from __future__ import annotations

import gzip
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from scseg.cli import main
from scseg.inference import load_model, predict_image

from ..conftest import REPO


def _predict(*args: str) -> int:
    return main(["predict", "--quiet", *[str(a) for a in args]])


def test_3d_checkpoint_predicts_volume_with_its_geometry(ckpt_3d, data_env, tmp_path) -> None:
    model = load_model(ckpt_3d)
    assert (
        model.data_info["spacing"] == [2.0, 2.0, 2.0] and model.data_info["patch_size"] == [32] * 3
    )
    source = data_env / "datasets" / "brain_tissue3d" / "imagesTr" / "icbm_superior.nii.gz"
    assert _predict("--checkpoint", ckpt_3d, "--input", source, "--output", tmp_path / "out") == 0
    out, src = nib.load(tmp_path / "out" / source.name), nib.load(source)
    np.testing.assert_array_equal(out.affine, src.affine)
    assert out.shape == src.shape and out.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(out.dataobj))) <= {0, 1, 2}


def test_compiled_prediction_equals_eager(ckpt_3d, data_env, tmp_path) -> None:
    whole = data_env / "datasets" / "brain_tissue3d" / "imagesTr" / "icbm_superior.nii.gz"
    source = tmp_path / "crop.nii.gz"  # a crop: the compiling, not the volume, is tested
    nib.save(nib.load(whole).slicer[40:140, 50:150, 10:80], source)
    runs = {"eager": (), "compiled": ("--compile",)}
    for name, extra in runs.items():
        args = ("--checkpoint", ckpt_3d, "--input", source, "--output", tmp_path / name, *extra)
        assert _predict(*args, "--probabilities") == 0
    stem = source.name.removesuffix(".nii.gz")
    probs = [nib.load(tmp_path / n / f"{stem}_probabilities.nii.gz").get_fdata() for n in runs]
    np.testing.assert_allclose(*probs, atol=1e-4)  # fused kernels round differently
    labels = [np.asarray(nib.load(tmp_path / n / source.name).dataobj) for n in runs]
    assert (labels[0] != labels[1]).mean() < 1e-4


def test_2d_folder_predicts_pngs_at_input_size(ckpt_2d, data_env, tmp_path) -> None:
    images = tmp_path / "in"
    images.mkdir()
    tiles = sorted((data_env / "datasets" / "nuclei2d" / "images").glob("*.tif"))[:2]
    for tile in tiles:
        shutil.copy(tile, images)
    # An odd size that the ResNet encoder cannot take directly: padded, then cropped back.
    Image.fromarray(np.random.default_rng(0).integers(0, 200, (75, 61), dtype=np.uint8)).save(
        images / "odd.png"
    )
    out = tmp_path / "out"
    assert _predict("--checkpoint", ckpt_2d, "--input", images, "--output", out, "--overlay") == 0
    odd = np.asarray(Image.open(out / "odd.png"))
    assert odd.shape == (75, 61) and odd.dtype == np.uint8 and set(np.unique(odd)) <= {0, 1}
    assert np.asarray(Image.open(out / "odd_overlay.png")).shape == (75, 61, 3)
    assert (out / f"{tiles[0].stem}.png").is_file()
    _, probs = predict_image(load_model(ckpt_2d), images / "odd.png", tta=True)
    assert probs.shape == (2, 75, 61)


def test_one_bad_file_is_reported_and_the_rest_still_run(ckpt_3d, data_env, tmp_path, capsys):
    source = data_env / "datasets" / "brain_tissue3d" / "imagesTr" / "icbm_superior.nii.gz"
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(source, inputs / "good.nii.gz")
    raw = gzip.decompress(source.read_bytes())
    (inputs / "truncated.nii.gz").write_bytes(gzip.compress(raw[: len(raw) // 3]))
    nib.save(nib.Nifti1Image(np.zeros((20, 20), np.float32), np.eye(4)), inputs / "flat.nii.gz")
    two = np.zeros((20, 20, 20, 2), np.float32)
    nib.save(nib.Nifti1Image(two, np.eye(4)), inputs / "twochannel.nii.gz")
    out = tmp_path / "out"
    assert _predict("--checkpoint", ckpt_3d, "--input", inputs, "--output", out) == 1
    err = capsys.readouterr().err
    assert "3 input(s) failed" in err and "Traceback" not in err
    assert f"{inputs / 'truncated.nii.gz'}: cannot read volume data (OSError: Expected " in err
    assert "applying transform" not in err and " at 0x" not in err  # the cause, not MONAI's wrapper
    assert f"{inputs / 'flat.nii.gz'}: expected a 3D volume, got shape (20, 20)" in err
    assert f"{inputs / 'twochannel.nii.gz'}: has 2 channel(s), the model takes 1" in err
    # nothing half-written: the good case and its label table only
    assert sorted(p.name for p in out.iterdir()) == ["good.nii.gz", "good.tsv"]


def test_existing_output_is_kept_without_overwrite(ckpt_2d, data_env, tmp_path, capsys) -> None:
    tile = sorted((data_env / "datasets" / "nuclei2d" / "images").glob("*.tif"))[0]
    out = tmp_path / "out"
    out.mkdir()
    target = out / f"{tile.stem}.png"
    target.write_bytes(b"user's file")
    # some of the outputs there (no overlay yet): refused, nothing written
    args = ("--checkpoint", ckpt_2d, "--input", tile, "--output", out)
    assert _predict(*args, "--overlay") == 1
    assert target.read_bytes() == b"user's file"
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == [target.name]
    # all of them there: a finished case, kept and counted as such
    assert _predict(*args) == 0
    assert target.read_bytes() == b"user's file"
    assert "0 of 1 input(s) predicted" in capsys.readouterr().out
    assert _predict(*args, "--overwrite") == 0
    assert np.asarray(Image.open(target)).shape == (128, 128)
    assert [p.name for p in out.iterdir()] == [target.name]  # no temporary files left


def test_wrong_dimensionality_for_checkpoint(ckpt_2d, tmp_path, capsys) -> None:
    volume = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), volume)
    # A 2D model given a folder holding only volumes: nothing it can read.
    folder = tmp_path / "vols"
    folder.mkdir()
    shutil.copy(volume, folder)
    assert _predict("--checkpoint", ckpt_2d, "--input", folder, "--output", tmp_path / "o") == 1
    assert f"{folder}: holds no images" in capsys.readouterr().err
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(rgb)
    assert _predict("--checkpoint", ckpt_2d, "--input", rgb, "--output", tmp_path / "o") == 1
    assert f"{rgb}: has 3 channel(s), the model takes 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "checkpoint not found"),
        (lambda p: p.write_bytes(b"PK\x03\x04 truncated"), "not a readable checkpoint"),
        (lambda p: torch.save({"conv.weight": torch.zeros(1)}, p), "not an scseg checkpoint"),
        (lambda p: torch.save({"state_dict": {"w": torch.zeros(1)},
                               "hyper_parameters": {"lr": 1}}, p), "not an scseg checkpoint"),
    ],
)  # fmt: skip
def test_bad_checkpoints(make, message, tmp_path, capsys) -> None:
    ckpt = tmp_path / "model.ckpt"
    make(ckpt)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(image)
    assert _predict("--checkpoint", ckpt, "--input", image, "--output", tmp_path / "out") == 1
    err = capsys.readouterr().err.strip()
    assert err == f"scseg: error: {ckpt}: {message}" or err.startswith(
        f"scseg: error: {ckpt}: {message}"
    )
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_truncated_real_checkpoint(ckpt_2d, tmp_path, capsys) -> None:
    cut = tmp_path / "cut.ckpt"
    data = ckpt_2d.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(image)
    assert _predict("--checkpoint", cut, "--input", image, "--output", tmp_path / "out") == 1
    assert f"{cut}: not a readable checkpoint" in capsys.readouterr().err


def test_checkpoint_survives_a_changed_default(ckpt_3d, tmp_path, monkeypatch) -> None:
    from scseg.inference.checkpoint import CheckpointError
    from scseg.models.unet import unet

    checkpoint = torch.load(ckpt_3d, map_location="cpu", weights_only=True)
    assert checkpoint["scseg"]["architecture"]["upsample"] == "transposed"  # the default
    monkeypatch.setitem(unet.__kwdefaults__, "upsample", "nearest")  # a later release's
    net = load_model(ckpt_3d).net
    assert all(block.up is not None for block in net.decoder.blocks)
    # A checkpoint without the resolved options (older than them) is rebuilt from the
    # config's options alone, and then says clearly that its weights do not fit.
    del checkpoint["scseg"]["architecture"]
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    with pytest.raises(CheckpointError, match=f"{old}: weights do not fit its model settings"):
        load_model(old)


def test_missing_input(ckpt_2d, tmp_path, capsys) -> None:
    assert (
        _predict("--checkpoint", ckpt_2d, "--input", tmp_path / "nope", "--output", tmp_path) == 1
    )
    assert f"{tmp_path / 'nope'}: no such file or folder" in capsys.readouterr().err


def test_readme_mentions_predict() -> None:
    assert "scseg predict" in (REPO / "README.md").read_text()


def test_pretrained_encoder_checkpoint_loads_offline(ckpt_2d, tmp_path, monkeypatch) -> None:
    """A model trained from ImageNet weights predicts without asking SMP to download them."""
    import socket

    import torch

    from scseg.inference import load_model

    checkpoint = torch.load(ckpt_2d, map_location="cpu", weights_only=True)
    checkpoint["scseg"]["architecture"]["encoder_weights"] = "imagenet"
    checkpoint["hyper_parameters"]["model_options"]["encoder_weights"] = "imagenet"
    pretrained = tmp_path / "imagenet.ckpt"
    torch.save(checkpoint, pretrained)

    def offline(*args, **kwargs):
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", offline)
    monkeypatch.setattr(socket, "create_connection", offline)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, reference = load_model(pretrained), load_model(ckpt_2d)
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.net(x), reference.net(x))


def test_predict_refuses_to_write_over_an_input(ckpt_3d, data_env, tmp_path, capsys) -> None:
    source = data_env / "datasets" / "brain_tissue3d" / "imagesTr" / "icbm_superior.nii.gz"
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(source, scans / "scan.nii.gz")
    before = (scans / "scan.nii.gz").read_bytes()
    args = ("--checkpoint", ckpt_3d, "--input", scans, "--output", scans, "--overwrite")
    assert _predict(*args) == 1
    err = capsys.readouterr().err
    assert f"{scans / 'scan.nii.gz'}: output would replace the input" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (scans / "scan.nii.gz").read_bytes() == before
    assert sorted(p.name for p in scans.iterdir()) == ["scan.nii.gz"]


def test_predict_refuses_two_inputs_with_one_output(ckpt_3d, raw_samples, tmp_path, capsys):
    from scseg.data.convert import nrrd_to_nifti

    scans = tmp_path / "scans"
    scans.mkdir()
    nrrd_source = raw_samples / "tumour3d" / "breast1_image.nrrd"
    shutil.copy(nrrd_source, scans / "a.nrrd")
    nrrd_to_nifti(nrrd_source, scans / "a.nii.gz")
    out = tmp_path / "out"
    assert _predict("--checkpoint", ckpt_3d, "--input", scans, "--output", out) == 1
    err = capsys.readouterr().err
    assert "a.nii.gz and " in err and "a.nrrd both map to the output" in err
    assert not out.exists()  # refused before anything was written


def test_outputs_honour_the_umask_and_label_header(oracle_3d, tmp_path) -> None:
    import os

    from scseg.inference import PredictOptions, predict_files

    grid = np.indices((20, 20, 20)).astype(np.float32)
    volume = (((grid - 10) ** 2).sum(0) < 36).astype(np.float32)
    image = nib.Nifti1Image(volume * 300, np.diag([1.5, 1.5, 1.5, 1]))
    image.header["cal_min"], image.header["cal_max"] = 100.0, 900.0  # the input's window
    image.header.set_intent("z score")
    nib.save(image, tmp_path / "scan.nii.gz")
    oracle_3d.data_info["intensity"] = "none"
    old = os.umask(0o022)
    try:
        options = PredictOptions(probabilities=True)
        assert predict_files(oracle_3d, [tmp_path / "scan.nii.gz"], tmp_path / "out",
                             options, quiet=True).failures == []  # fmt: skip
    finally:
        os.umask(old)
    labels = nib.load(tmp_path / "out" / "scan.nii.gz")
    assert (tmp_path / "out" / "scan.nii.gz").stat().st_mode & 0o777 == 0o644
    assert labels.header.get_intent()[0] == "label"
    assert (labels.header["cal_min"], labels.header["cal_max"]) == (0.0, 1.0)
    probs = nib.load(tmp_path / "out" / "scan_probabilities.nii.gz")
    assert probs.header.get_intent()[0] == "none" and probs.header["cal_max"] == 1.0


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_probabilities_written_class_by_class(dtype, tmp_path) -> None:
    """``--probabilities`` streams class volumes into the file as they are resampled: the
    file holds what the in-memory path returns (uint8: within half a step of 1/255), in
    the input's geometry."""
    from scseg.inference import PredictOptions, inversion, predict_files, predict_volume

    from .conftest import tiny_model

    model = tiny_model(3)
    model.data_info.update(spacing=[1.5, 1.5, 1.5], intensity="zscore")
    affine = np.diag([-0.9, 1.1, 2.0, 1.0])
    affine[:3, 3] = [10, -5, 3]
    rng = np.random.default_rng(0)
    nib.save(nib.Nifti1Image(rng.random((30, 26, 12), dtype=np.float32), affine),
             tmp_path / "scan.nii.gz")  # fmt: skip
    expected = predict_volume(model, tmp_path / "scan.nii.gz", probabilities=True)
    options = PredictOptions(probabilities=True, probabilities_dtype=dtype)
    chunk = 30 * 26 * 12  # one class per chunk: three writes
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(inversion, "CLASS_CHUNK_ELEMENTS", chunk)
        assert predict_files(model, [tmp_path / "scan.nii.gz"], tmp_path / "out", options,
                             quiet=True).failures == []  # fmt: skip
    written = nib.load(tmp_path / "out" / "scan_probabilities.nii.gz")
    assert written.shape == (30, 26, 12, 3) and written.get_data_dtype() == np.dtype(dtype)
    np.testing.assert_array_equal(written.affine, nib.load(tmp_path / "scan.nii.gz").affine)
    want = np.asarray(expected.probabilities.dataobj)
    np.testing.assert_allclose(written.get_fdata(), want, rtol=0,
                               atol=0 if dtype == "float32" else 0.5 / 255 + 1e-6)  # fmt: skip
    labels = np.asarray(nib.load(tmp_path / "out" / "scan.nii.gz").dataobj)
    np.testing.assert_array_equal(labels, np.asarray(expected.labels.dataobj))
