"""``scseg plan`` -> ``fit`` -> ``evaluate`` on sparse labels (an ignore value) and on
regions that overlap, from ``dataset.json`` as nnU-Net v2 writes it."""

from __future__ import annotations

import json
import re
import shutil

import nibabel as nib
import numpy as np
import pytest
import yaml

from scseg.cli import main

from .test_plan import _error, _fit, _plan, own_scans  # noqa: F401 (fixture)

IGNORE = 3


def _labelled(own_scans, root, labels: dict, sparse: bool = False, **extra):  # noqa: F811
    """own_scans with a ``dataset.json``; ``sparse``: every voxel off every fourth axial
    plane is not annotated."""
    shutil.copytree(own_scans, root)
    if sparse:
        for path in sorted((root / "labelsTr").iterdir()):
            image = nib.load(path)
            data = np.asarray(image.dataobj).copy()
            keep = np.zeros(data.shape, bool)
            keep[:, :, ::4] = True
            data[~keep] = IGNORE
            nib.save(nib.Nifti1Image(data, image.affine, image.header), path)
    cases = sorted(p.name for p in (root / "imagesTr").iterdir())
    meta = {"channel_names": {"0": "T1"}, "labels": labels,
            "training": [{"image": f"./imagesTr/{c}", "label": f"./labelsTr/{c}"} for c in cases],
            **extra}  # fmt: skip
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


TISSUE = {"background": 0, "grey matter": 1, "white matter": 2}


def test_sparse_labels_plan_train_and_evaluate(own_scans, tmp_path, capsys) -> None:  # noqa: F811
    data = _labelled(own_scans, tmp_path / "sparse", {**TISSUE, "ignore": IGNORE}, sparse=True)
    out = tmp_path / "sparse.yaml"  # with nnU-Net's optimisation, which it then trains with
    assert _plan(data, out, "--memory", "0.5", "--device", "cpu", "--schedule", "nnunet") == 0
    printed = capsys.readouterr().out
    assert "annotated" in printed and "not annotated" in printed
    config = yaml.safe_load(out.read_text())
    assert config["model"]["ignore_index"] == IGNORE
    model = config["model"]
    assert (model["optimizer"], model["lr"], model["weight_decay"], model["scheduler"]) == (
        "sgd", 0.01, 3e-5, "poly")  # fmt: skip
    assert config["model"]["classes"] == config["data"]["init_args"]["classes"] == 3
    assert config["data"]["init_args"]["class_names"] == list(TISSUE)
    share = float(re.search(r"ignore label: ([\d.]+) % of voxels", out.read_text())[1])
    assert 20 < share < 30  # one axial plane in four
    assert _fit(out, tmp_path / "run", "--trainer.fast_dev_run", "true") == 0
    # the model is told the ignore value by the config; a config without it is refused
    assert _fit(out, tmp_path / "run2", "--trainer.fast_dev_run", "true",
                "--model.ignore_index", "null") != 0  # fmt: skip
    assert "model.ignore_index=None but the data's dataset.json gives 3" in capsys.readouterr().err
    # evaluate: a prediction right on every annotated voxel and wrong on the others
    # scores 1, on annotated voxels only, and says so
    prediction = tmp_path / "pred"
    prediction.mkdir()
    for path in sorted((data / "labelsTr").iterdir())[:2]:
        image = nib.load(path)
        truth = np.asarray(image.dataobj)
        guess = np.where(truth == IGNORE, 2 - (truth % 3), truth).astype(np.uint8)
        nib.save(nib.Nifti1Image(guess, image.affine), prediction / path.name)
    cases = [p.name.removesuffix(".nii.gz") for p in sorted(prediction.iterdir())]
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [], "val": cases}))
    scores = tmp_path / "scores.csv"
    assert main(["evaluate", "--prediction", str(prediction), "--truth", str(data / "labelsTr"),
                 "--out", str(scores), "--split", str(split)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "scored on annotated voxels only: truth label 3 means not annotated" in printed
    assert "grey matter" in printed
    rows = [line.split(",") for line in scores.read_text().splitlines()[1:]]
    assert {float(r[3]) for r in rows} == {1.0}  # Dice


def test_regions_plan_train_and_evaluate(own_scans, tmp_path, capsys) -> None:  # noqa: F811
    labels = {"background": 0, "brain": [1, 2], "white matter": [2]}
    data = _labelled(own_scans, tmp_path / "regions", labels, regions_class_order=[1, 2])
    out = tmp_path / "regions.yaml"
    assert _plan(data, out, "--memory", "0.5", "--device", "cpu") == 0
    assert "2 regions that may overlap" in capsys.readouterr().out
    config = yaml.safe_load(out.read_text())
    assert config["model"]["multilabel"] is True and config["model"]["classes"] == 2
    assert config["data"]["init_args"]["class_names"] == ["brain", "white matter"]
    assert _fit(out, tmp_path / "run", "--trainer.fast_dev_run", "true") == 0
    # evaluate regions: masks (4D) and label maps by region order both score 1
    masks, maps = tmp_path / "masks", tmp_path / "maps"
    masks.mkdir()
    maps.mkdir()
    for path in sorted((data / "labelsTr").iterdir())[:2]:
        image = nib.load(path)
        truth = np.asarray(image.dataobj)
        stacked = np.stack([np.isin(truth, [1, 2]), truth == 2], -1).astype(np.uint8)
        nib.save(nib.Nifti1Image(stacked, image.affine), masks / path.name)
        nib.save(nib.Nifti1Image(truth.astype(np.uint8), image.affine), maps / path.name)
    cases = [p.name.removesuffix(".nii.gz") for p in sorted(masks.iterdir())]
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [], "val": cases}))
    for prediction in (masks, maps):
        scores = tmp_path / f"{prediction.name}.csv"
        args = ["--prediction", prediction, "--truth", data / "labelsTr", "--out", scores]
        assert main(["evaluate", *map(str, args), "--split", str(split)]) == 0
        assert "2 region(s) (may overlap)" in capsys.readouterr().out
        rows = [line.split(",") for line in scores.read_text().splitlines()[1:]]
        assert {r[2] for r in rows} == {"brain", "white matter"}
        assert {float(r[3]) for r in rows} == {1.0}


@pytest.mark.parametrize(
    ("labels", "extra", "expected"),
    [
        ({**TISSUE, "ignore": 2}, {}, "labels.ignore = 2 collides with class 'white matter' (2)"),
        ({"background": 0, "brain": [1, 2], "lesion": [5]}, {},
         "labels.lesion names label value(s) [5] that no label map holds"),
        # float and string label values, and region orders that are not label values:
        # these once stopped with "invalid literal for int()", naming neither file nor key
        ({"background": 0, "grey matter": 1.0, "white matter": 2}, {},
         "labels.grey matter = 1.0: give a whole number"),
        ({"background": "0", "grey matter": 1, "white matter": 2}, {},
         "labels.background = '0': give a whole number"),
        ({"background": "bg", "grey matter": "gm"}, {},
         "labels key 'background' is not a label value"),
        ({"background": 0, "brain": [1, 2], "white": [2]}, {"regions_class_order": ["x", 2]},
         "regions_class_order must hold label values 1..32767"),
        ({"background": 0, "brain": [1, 2], "white": [2]}, {"regions_class_order": [-1, 2]},
         "regions_class_order must hold label values 1..32767"),
    ],
)  # fmt: skip
def test_bad_labels_are_one_line(own_scans, tmp_path, capsys, labels, extra, expected) -> None:  # noqa: F811
    data = _labelled(own_scans, tmp_path / "bad", labels, **extra)
    err = _error(capsys, "--data", data, "--out", tmp_path / "p.yaml")
    assert expected in err and str(data / "dataset.json") in err and "\n" not in err


def test_region_masks_plan_and_train(own_scans, tmp_path) -> None:  # noqa: F811
    """Regions as one mask per region (4D label files, ``region_masks``) plan and train
    as regions given by label values do."""
    data = _labelled(own_scans, tmp_path / "masks", {}, region_masks=["brain", "white matter"])
    for path in sorted((data / "labelsTr").iterdir()):
        image = nib.load(path)
        truth = np.asarray(image.dataobj)
        stacked = np.stack([np.isin(truth, [1, 2]), truth == 2], -1).astype(np.uint8)
        nib.save(nib.Nifti1Image(stacked, image.affine), path)
    out = tmp_path / "masks.yaml"
    assert _plan(data, out, "--memory", "0.5", "--device", "cpu") == 0
    config = yaml.safe_load(out.read_text())
    assert config["model"]["multilabel"] is True and config["model"]["classes"] == 2
    assert _fit(out, tmp_path / "run", "--trainer.fast_dev_run", "true") == 0


def test_a_declared_class_that_never_occurs_is_planned_and_reported(own_scans, tmp_path, capsys):  # noqa: F811
    """dataset.json names background, grey and white matter and a lesion class that no
    label map holds: the plan once dropped it silently (classes: 3)."""
    labels = {**TISSUE, "lesion": 3}
    data = _labelled(own_scans, tmp_path / "data", labels)
    out = tmp_path / "p.yaml"
    assert _plan(data, out) == 0
    err = capsys.readouterr().err
    warning = f"{data / 'dataset.json'}: names class(es) that no label map holds: lesion (3)"
    assert f"scseg: warning: {warning}" in err
    config = yaml.safe_load(out.read_text())
    assert config["model"]["classes"] == config["data"]["init_args"]["classes"] == 4
    assert config["data"]["init_args"]["class_names"] == [*TISSUE, "lesion"]
