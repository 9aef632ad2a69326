"""Bad datasets stop before training with one report naming every case and problem."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from scseg.cli import main
from scseg.data import Folder2DDataModule, MSD3DDataModule
from scseg.data.convert import write_msd_dataset_json, write_split
from scseg.data.validation import DataValidationError
from scseg.training.callbacks import AtomicCheckpointIO

from ..conftest import REPO


def _folder_dataset(root, cases: dict) -> None:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for case, spec in cases.items():
        image = spec.get("image", rng.random((32, 32)).astype(np.float32))
        if spec.get("empty_image"):
            (root / "images" / f"{case}.tif").write_bytes(b"")
        else:
            tifffile.imwrite(root / "images" / f"{case}.tif", image)
        mask = spec.get("mask", (rng.random((32, 32)) > 0.5).astype(np.uint8))
        if not spec.get("no_mask"):
            Image.fromarray(mask).save(root / "masks" / f"{case}.png")


def test_2d_report_names_every_bad_case(tmp_path, capsys) -> None:
    root = tmp_path / "d"
    shared = np.random.default_rng(5).random((32, 32)).astype(np.float32)
    bad_labels = np.zeros((32, 32), np.uint8)
    bad_labels[0, 0] = 7
    nan_image = np.ones((32, 32), np.float32)
    nan_image[3, 3] = np.nan
    _folder_dataset(root, {
        "good": {}, "labels": {"mask": bad_labels}, "nan": {"image": nan_image},
        "nomask": {"no_mask": True}, "empty": {"empty_image": True},
        "size": {"mask": np.zeros((16, 32), np.uint8)}, "copy_a": {"image": shared},
        "copy_b": {"image": shared}, "rgb": {"image": np.zeros((32, 32, 3), np.float32)},
    })  # fmt: skip
    write_split(
        root, ["good", "labels", "nan", "nomask", "empty", "copy_a", "rgb"], ["size", "copy_b"]
    )
    args = ["fit", "--config", str(REPO / "configs" / "quickstart_2d.yaml"),
            "--data.init_args.root", str(root), "--trainer.default_root_dir", str(tmp_path / "run"),
            "--trainer.fast_dev_run", "true"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "set data.validate: false" in err
    for expected in (
        "labels: label values [7] outside 0..1",
        "nan: 1 NaN/Inf intensity value(s)",
        "nomask: ",
        "empty: ",
        "size: image (32, 32) and mask (16, 32) differ in size",
        "copy_b: validation image identical to training case copy_a",
        "rgb: 3 channel(s), the config says 1",
    ):
        assert expected in err, expected
    assert "good:" not in err
    assert not (tmp_path / "run" / "checkpoints").exists()  # stopped before training


def test_validation_can_be_skipped(tmp_path) -> None:
    root = tmp_path / "d"
    bad = np.zeros((32, 32), np.uint8)
    bad[0, 0] = 3
    _folder_dataset(root, {"a": {"mask": bad}, "b": {}})
    write_split(root, ["a"], ["b"])
    with pytest.raises(DataValidationError, match=r"outside 0\.\.1"):
        Folder2DDataModule(str(root), patch_size=(32, 32)).setup("fit")
    Folder2DDataModule(str(root), patch_size=(32, 32), validate=False).setup("fit")


def test_3d_geometry_shape_and_nan(tmp_path) -> None:
    root = tmp_path / "msd"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    volume = np.random.default_rng(0).random((12, 12, 8)).astype(np.float32)
    label = (volume > 0.5).astype(np.uint8)
    cases = {
        "ok": (volume, label, np.eye(4)),
        "shifted": (volume, label, np.diag([1.0, 1.0, 2.0, 1.0])),
        "shape": (volume, label[:, :, :6], np.eye(4)),
        "nan": (np.where(volume > 0.9, np.inf, volume).astype(np.float32), label, np.eye(4)),
    }
    for case, (img, lab, label_affine) in cases.items():
        nib.save(nib.Nifti1Image(img, np.eye(4)), root / "imagesTr" / f"{case}.nii.gz")
        nib.save(nib.Nifti1Image(lab, label_affine), root / "labelsTr" / f"{case}.nii.gz")
    write_msd_dataset_json(root, "t", ["MR"], {0: "bg", 1: "fg"}, list(cases))
    write_split(root, ["ok", "shifted", "shape"], ["nan"])
    with pytest.raises(DataValidationError) as info:
        MSD3DDataModule(str(root), patch_size=(8, 8, 8)).setup("fit")
    message = str(info.value)
    assert "shifted: image and label geometry (affine) differ" in message
    assert "shape: image (12, 12, 8) and label (12, 12, 6) differ" in message
    assert "nan: " in message and "NaN/Inf" in message
    assert "ok:" not in message
    assert json.loads((root / "split.json").read_text())["val"] == ["nan"]


def test_non_finite_loss_stops_clearly(tmp_path, capsys) -> None:
    root = tmp_path / "d"
    inf_image = np.full((32, 32), np.inf, np.float32)
    _folder_dataset(root, {"a": {"image": inf_image}, "b": {}})
    write_split(root, ["a"], ["b"])
    args = [
        "fit", "--config", str(REPO / "configs" / "quickstart_2d.yaml"),
        "--data.init_args.root", str(root), "--data.init_args.validate", "false",
        "--data.init_args.patch_size", "[32, 32]", "--data.init_args.num_workers", "0",
        "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.max_epochs", "1",
    ]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "non-finite training loss" in err and "gradient_clip_val" in err
    assert "Traceback" not in err


def test_atomic_checkpoint_keeps_previous_on_failure(tmp_path, monkeypatch) -> None:
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1}, target)
    assert torch.load(target, weights_only=True)["epoch"] == 1

    def torn_save(obj, path):
        with open(path, "wb") as f:
            f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"epoch": 2}, target)
    monkeypatch.undo()
    assert torch.load(target, weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
