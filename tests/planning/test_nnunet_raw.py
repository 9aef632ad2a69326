"""An nnU-Net v2 raw dataset, as ``nnUNetv2_plan_and_preprocess`` reads it (no
``training`` list: ``imagesTr/<case>_<XXXX>.nii.gz`` per channel, ``labelsTr/<case>.nii.gz``,
``channel_names``, ``labels``, ``numTraining``, ``file_ending``), goes through ``scseg plan``
-> ``fit`` -> ``predict`` -> ``evaluate`` as it is: single- and multi-channel, with an
ignore label and with regions. Once refused with "not an MSD dataset.json ('training')"."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import yaml

from scseg.cli import main

from .test_plan import _error, _fit, _plan, own_scans  # noqa: F401 (fixture)

TISSUE = {"background": 0, "grey matter": 1, "white matter": 2}
IGNORE = 3


def _nnunet_raw(own_scans, root, labels: dict, channels: int = 1, sparse: bool = False,  # noqa: F811
                **extra):  # fmt: skip
    """own_scans as nnU-Net v2 raw data: six cases in imagesTr/labelsTr, two held out in
    imagesTs (their truth in labelsTs). Channel 1, where asked, is the T1 inverted inside
    the head (a second contrast)."""
    cases = sorted(p.name.removesuffix(".nii.gz") for p in (own_scans / "imagesTr").iterdir())
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (root / sub).mkdir(parents=True)
    for k, case in enumerate(cases):
        part = "Tr" if k < 6 else "Ts"
        image = nib.load(own_scans / "imagesTr" / f"{case}.nii.gz")
        t1 = np.asarray(image.dataobj, dtype=np.float32)
        contrasts = [t1, np.where(t1 > 0, t1.max() - t1, 0)][:channels]
        for c, data in enumerate(contrasts):
            nib.save(
                nib.Nifti1Image(data, image.affine),
                root / f"images{part}" / f"{case}_{c:04d}.nii.gz",
            )
        label = nib.load(own_scans / "labelsTr" / f"{case}.nii.gz")
        values = np.asarray(label.dataobj).copy()
        if sparse and part == "Tr":
            keep = np.zeros(values.shape, bool)
            keep[:, :, ::4] = True
            values[~keep] = IGNORE
        nib.save(
            nib.Nifti1Image(values.astype(np.uint8), label.affine),
            root / f"labels{part}" / f"{case}.nii.gz",
        )
    meta = {"channel_names": {str(c): ("T1", "T1 inverted")[c] for c in range(channels)},
            "labels": labels, "numTraining": 6, "file_ending": ".nii.gz", **extra}  # fmt: skip
    (root / "dataset.json").write_text(json.dumps(meta, indent=1))
    return root


def _plan_fit_predict(data, tmp_path, capsys, *predict_extra: str):
    config = tmp_path / "plan.yaml"
    assert _plan(data, config, "--memory", "0.5", "--device", "cpu") == 0
    printed = capsys.readouterr().out
    assert "6 cases" in printed
    run = tmp_path / "run"
    stages = len(yaml.safe_load(config.read_text())["model"]["model_options"]["channels"])
    narrow = [4] + [8] * (stages - 1)
    assert _fit(config, run, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
                "--trainer.limit_val_batches", "1", "--data.init_args.patch_size", "[32, 32, 32]",
                "--data.init_args.samples_per_volume", "1",  # a narrow network: the data is tested
                "--model.model_options.channels", json.dumps(narrow)) == 0  # fmt: skip
    out = tmp_path / "pred"
    args = ["predict", "--quiet", "--checkpoint", str(run / "checkpoints" / "last.ckpt"),
            "--input", str(data / "imagesTs"), "--output", str(out), *predict_extra]  # fmt: skip
    assert main(args) == 0
    assert "2 of 2 input(s) predicted" in capsys.readouterr().out
    # one output per case, named as the case (nnU-Net's naming), on the input's grid
    for truth in sorted((data / "labelsTs").iterdir()):
        written = nib.load(out / truth.name)
        np.testing.assert_allclose(written.affine, nib.load(truth).affine, atol=1e-5)
        assert written.shape[:3] == nib.load(truth).shape
    scores = tmp_path / "scores.csv"
    assert main(["evaluate", "--prediction", str(out), "--truth", str(data / "labelsTs"),
                 "--out", str(scores)]) == 0  # fmt: skip
    return yaml.safe_load(config.read_text()), capsys.readouterr().out


def test_single_channel_with_an_ignore_label(own_scans, tmp_path, capsys) -> None:  # noqa: F811
    data = _nnunet_raw(own_scans, tmp_path / "raw", {**TISSUE, "ignore": IGNORE}, sparse=True)
    config, printed = _plan_fit_predict(data, tmp_path, capsys)
    assert config["model"]["ignore_index"] == IGNORE and config["model"]["in_channels"] == 1
    assert config["data"]["init_args"]["class_names"] == list(TISSUE)
    assert "2 case(s), 2 class(es)" in printed and "grey matter" in printed


def test_two_channels_in_files_of_their_own(own_scans, tmp_path, capsys) -> None:  # noqa: F811
    data = _nnunet_raw(own_scans, tmp_path / "raw", TISSUE, channels=2)
    config, printed = _plan_fit_predict(data, tmp_path, capsys)
    assert config["model"]["in_channels"] == config["data"]["init_args"]["in_channels"] == 2
    assert "2 case(s), 2 class(es)" in printed


def test_regions(own_scans, tmp_path, capsys) -> None:  # noqa: F811
    labels = {"background": 0, "brain": [1, 2], "white matter": [2]}
    data = _nnunet_raw(own_scans, tmp_path / "raw", labels, regions_class_order=[1, 2])
    config, printed = _plan_fit_predict(data, tmp_path, capsys, "--regions", "labelmap")
    assert config["model"]["multilabel"] is True and config["model"]["classes"] == 2
    assert "2 region(s) (may overlap)" in printed


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda root, meta: meta.update(numTraining=7),
         "numTraining is 7, but {root}/imagesTr holds 6 case(s)"),
        (lambda root, meta: meta.update(file_ending=".nrrd"),
         "{root}/imagesTr: no file ends in .nrrd (dataset.json file_ending); found .nii.gz"),
        (lambda root, meta: meta.update(file_ending=".png"),
         "file_ending .png: scseg reads NIfTI and NRRD volumes here"),
        (lambda root, meta: meta.update(channel_names={"0": "T1", "1": "T2"}),
         "{root}/imagesTr: case block1_anterior has channel file(s) _0000; dataset.json names "
         "2 channel(s) (_0000 to _0001)"),
        (lambda root, meta: (root / "labelsTr" / "block2_anterior.nii.gz").unlink(),
         "{root}/labelsTr: no label for 1 of 6 image(s): block2_anterior"),
        (lambda root, meta: shutil.move(root / "imagesTr" / "block1_anterior_0000.nii.gz",
                                        root / "imagesTr" / "block1_anterior.nii.gz"),
         "block1_anterior.nii.gz: not named <case>_<channel>.nii.gz"),
    ],
)  # fmt: skip
def test_a_dataset_that_does_not_match_its_files_is_one_line(
    change,
    expected,
    own_scans,  # noqa: F811
    tmp_path,
    capsys,
) -> None:
    root = _nnunet_raw(own_scans, tmp_path / "raw", TISSUE)
    meta = json.loads((root / "dataset.json").read_text())
    change(root, meta)
    (root / "dataset.json").write_text(json.dumps(meta))
    err = _error(capsys, "--data", root, "--out", tmp_path / "p.yaml")
    assert expected.format(root=root) in err and "\n" not in err, err
    assert not (tmp_path / "p.yaml").exists()
