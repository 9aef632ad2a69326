"""Model packages: what they hold, that they predict as their checkpoints do, that their
card reports the run, and that a damaged, incomplete or newer package is refused."""

from __future__ import annotations

import json
import zipfile

import nibabel as nib
import numpy as np
import pytest
import torch
from safetensors.torch import load

from scseg.cli import main
from scseg.inference import load_model, load_models
from scseg.inference.package import MANIFEST, read_package, write_package


@pytest.fixture(scope="module")
def package_3d(ckpt_3d, tmp_path_factory):
    out = tmp_path_factory.mktemp("package") / "tissue.scseg"
    assert main(["package", "--checkpoint", str(ckpt_3d), "--out", str(out)]) == 0
    return out


def _volume(data_env, tmp_path):
    """An oblique-free crop of the real T1 (fast to predict)."""
    source = nib.load(
        data_env / "datasets" / "brain_tissue3d" / "imagesTr" / "icbm_superior.nii.gz"
    )
    crop = source.slicer[40:120, 50:150, 20:80]
    path = tmp_path / "crop.nii.gz"
    nib.save(crop, path)
    return path


def test_package_holds_safetensors_and_plain_json(package_3d, ckpt_3d) -> None:
    with zipfile.ZipFile(package_3d) as archive:
        names = set(archive.namelist())
        assert names == {
            MANIFEST,
            "model.json",
            "card.json",
            "card.md",
            "weights/fold_0.safetensors",
        }
        weights = load(archive.read("weights/fold_0.safetensors"))
        model = json.loads(archive.read("model.json"))
        manifest = json.loads(archive.read(MANIFEST))
    original = load_model(ckpt_3d).net.state_dict()
    assert weights.keys() == original.keys()
    assert all(torch.equal(weights[k], original[k]) for k in original)
    assert [c["name"] for c in model["classes"]] == ["background", "grey matter", "white matter"]
    assert model["preprocessing"]["spacing"] == [2.0, 2.0, 2.0]
    assert model["preprocessing"]["orientation"] == "RAS"
    assert model["preprocessing"]["intensity"] == "zscore"
    assert manifest["format_version"] == 1 and len(manifest["files"]) == 4


def test_package_predicts_the_checkpoints_labels(package_3d, ckpt_3d, data_env, tmp_path) -> None:
    volume = _volume(data_env, tmp_path)
    for flag, source in (("--model", package_3d), ("--checkpoint", ckpt_3d)):
        out = tmp_path / flag.strip("-")
        assert (
            main(
                [
                    "predict",
                    "--quiet",
                    flag,
                    str(source),
                    "--input",
                    str(volume),
                    "--output",
                    str(out),
                ]
            )
            == 0
        )
    a, b = (nib.load(tmp_path / d / "crop.nii.gz") for d in ("model", "checkpoint"))
    np.testing.assert_array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
    np.testing.assert_array_equal(a.affine, b.affine)


def test_info_prints_the_card_with_the_runs_scores(package_3d, ckpt_3d, capsys) -> None:
    assert main(["package", "--info", str(package_3d)]) == 0
    card = capsys.readouterr().out
    rows = torch.load(ckpt_3d, weights_only=True)["scseg"]["scores"]["val"]
    assert [r["class"] for r in rows] == ["grey matter", "white matter"]
    for row in rows:  # each class's Dice, as the run scored it, is in the printed table
        assert f"| {row['class']} | {row['dice']:.4f} | {row['iou']:.4f} |" in card
    mean = sum(r["dice"] for r in rows) / len(rows)
    assert f"mean Dice {mean:.4f}" in card
    assert "resampled to 2 x 2 x 2 mm" in card and "`brain_tissue3d`" in card
    assert f"torch {torch.__version__}" in card
    with zipfile.ZipFile(package_3d) as archive:  # the sha256 of every file, as listed
        listed = json.loads(archive.read(MANIFEST))["files"]
    assert all(f"| `{name}` |" in card and digest in card for name, digest in listed.items())


def test_folds_are_averaged_as_with_several_checkpoints(ckpt_3d, tmp_path) -> None:
    other = tmp_path / "other.ckpt"
    checkpoint = torch.load(ckpt_3d, weights_only=True)
    torch.manual_seed(1)
    for value in checkpoint["state_dict"].values():  # a second, different fold
        if value.is_floating_point():
            value.add_(0.05 * torch.randn_like(value))
    torch.save(checkpoint, other)
    package = write_package([ckpt_3d, other], tmp_path / "folds.scseg")
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        ours = read_package(package).net(x)
        theirs = load_models([ckpt_3d, other]).net(x)
    torch.testing.assert_close(ours, theirs)
    assert len(read_package(package).net.members) == 2


def test_attention_and_export_take_a_package(ckpt_2d, data_env, tmp_path) -> None:
    package = tmp_path / "nuclei.scseg"
    assert main(["package", "--checkpoint", str(ckpt_2d), "--out", str(package)]) == 0
    image = next((data_env / "datasets" / "nuclei2d" / "images").glob("*.tif"))
    assert (
        main(
            [
                "attention",
                "--model",
                str(package),
                "--input",
                str(image),
                "--output",
                str(tmp_path / "att"),
            ]
        )
        == 0
    )
    assert any((tmp_path / "att").glob("*.png"))
    out = tmp_path / "net.ts"
    assert (
        main(
            [
                "export",
                "--model",
                str(package),
                "--format",
                "torchscript",
                "--output",
                str(out),
                "--shape",
                "64",
                "64",
            ]
        )
        == 0
    )
    assert out.is_file()


def _rewrite(package, out, change):
    """A copy of ``package`` with its members passed through ``change(name, data)``
    (returning new bytes, or None to leave the member out), as a valid zip."""
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = change(name, src.read(name))
            if data is not None:
                dst.writestr(name, data)
    return out


def _flip_weight_byte(name, data):
    if name.endswith(".safetensors"):
        data = bytearray(data)
        data[-7] ^= 0x01  # one bit of the last weight
        return bytes(data)
    return data


def _future(name, data):
    if name == MANIFEST:
        manifest = json.loads(data)
        manifest["format_version"] = 99
        return json.dumps(manifest).encode()
    return data


BAD_PACKAGES = {
    "changed byte": (_flip_weight_byte, "weights/fold_0.safetensors does not match its sha256"),
    "missing file": (lambda n, d: None if n == "card.md" else d, "card.md is missing"),
    "future format": (_future, "package format 99 is newer than this scseg"),
}


@pytest.mark.parametrize("case", ["changed byte", "missing file", "future format"])
def test_bad_package_is_refused_in_one_line(case, package_3d, data_env, tmp_path, capsys) -> None:
    change, message = BAD_PACKAGES[case]
    bad = _rewrite(package_3d, tmp_path / "bad.scseg", change)
    volume = _volume(data_env, tmp_path)
    out = tmp_path / "out"
    assert (
        main(
            [
                "predict",
                "--quiet",
                "--model",
                str(bad),
                "--input",
                str(volume),
                "--output",
                str(out),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and message in err
    assert not out.exists()
    assert main(["package", "--info", str(bad)]) == 1
    assert message in capsys.readouterr().err


def test_a_damaged_archive_is_refused(package_3d, tmp_path, capsys) -> None:
    raw = bytearray(package_3d.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside the stored weights: the zip's CRC no longer holds
    bad = tmp_path / "damaged.scseg"
    bad.write_bytes(bytes(raw))
    assert main(["package", "--info", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and ("damaged" in err or "sha256" in err)


def test_package_writing_refuses_to_overwrite(package_3d, ckpt_3d, capsys) -> None:
    before = package_3d.read_bytes()
    assert main(["package", "--checkpoint", str(ckpt_3d), "--out", str(package_3d)]) == 1
    assert "exists; pass --overwrite to replace it" in capsys.readouterr().err
    assert package_3d.read_bytes() == before
    wrong = package_3d.with_suffix(".zip")
    assert main(["package", "--checkpoint", str(ckpt_3d), "--out", str(wrong)]) == 1
    assert "ends in .scseg" in capsys.readouterr().err and not wrong.exists()
    assert not list(package_3d.parent.glob(".*"))  # no temporary left behind
    assert package_3d.stat().st_mode & 0o044  # readable by others, as any file written


def test_the_card_never_shows_the_sanity_checks_scores(data_env, tmp_path, capsys) -> None:
    """A checkpoint saved before the run's first validation once carried the scores of
    Lightning's sanity check (the untrained network) onto the card as the model's."""
    from ..conftest import _train

    ckpt = _train(
        tmp_path / "run", "quickstart_3d.yaml", "--trainer.check_val_every_n_epoch", "2",
        "--data.init_args.patch_size", "[32, 32, 32]", "--data.init_args.samples_per_volume", "1",
    )  # fmt: skip
    scores = torch.load(ckpt, weights_only=True)["scseg"]["scores"]
    assert scores == {"val": []}
    assert main(["package", "--checkpoint", str(ckpt), "--out", str(tmp_path / "m.scseg")]) == 0
    capsys.readouterr()
    assert main(["package", "--info", str(tmp_path / "m.scseg")]) == 0
    card = capsys.readouterr().out
    assert "mean Dice" not in card and "| class | Dice |" not in card
    assert "no validation of the training run recorded" in card


def test_the_card_says_which_validation_its_scores_come_from(package_3d, ckpt_3d, capsys):
    scores = torch.load(ckpt_3d, weights_only=True)["scseg"]["scores"]
    assert scores["validated"] and scores["epoch"] == 0 and scores["global_step"] > 0
    assert main(["package", "--info", str(package_3d)]) == 0
    card = capsys.readouterr().out
    assert f"validated at epoch 0, step {scores['global_step']}" in card


def _resigned(package, out, change):
    """``package`` with its files changed by ``change(files)`` and the manifest's sha256s
    rewritten to match: a crafted package, not a damaged one."""
    import hashlib

    with zipfile.ZipFile(package) as src:
        files = {n: src.read(n) for n in src.namelist() if n != MANIFEST}
        manifest = json.loads(src.read(MANIFEST))
    files = change(files)
    manifest["files"] = {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}
    with zipfile.ZipFile(out, "w") as dst:
        dst.writestr(MANIFEST, json.dumps(manifest))
        for name, data in files.items():
            dst.writestr(name, data)
    return out


def _edit_model(edit):
    def change(files):
        model = json.loads(files["model.json"])
        files["model.json"] = json.dumps(edit(model)).encode()
        return files

    return change


def _without_hparams(model):
    model.pop("hparams")
    return model


def _missing_fold_weights(model):
    model["folds"][0]["weights"] = "weights/fold_7.safetensors"
    return model


def _five_classes(model):
    model["hparams"]["classes"] = 5
    return model


def _manifest(value):
    def change(name, data):
        return json.dumps(value).encode() if name == MANIFEST else data

    return change


CRAFTED = {
    "no hparams": (_edit_model(_without_hparams), "model.json: 'hparams' missing"),
    "model a list": (_edit_model(lambda m: [m]), "model.json: not an object but a list"),
    "weights not safetensors": (
        lambda f: {**f, "weights/fold_0.safetensors": b"PK\x03\x04 not a tensor file"},
        "weights/fold_0.safetensors is not a safetensors file",
    ),
    "fold names a missing file": (
        _edit_model(_missing_fold_weights),
        "fold 0 names weights 'weights/fold_7.safetensors', not a file of the package",
    ),
    "classes disagree": (_edit_model(_five_classes), "fold 0's architecture has classes 3"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_crafted_package_is_refused_in_one_line(case, package_3d, data_env, tmp_path, capsys):
    change, message = CRAFTED[case]
    bad = _resigned(package_3d, tmp_path / "crafted.scseg", change)
    volume = _volume(data_env, tmp_path)
    out = tmp_path / "out"
    args = ["predict", "--quiet", "--model", str(bad), "--input", str(volume), "--output", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and message in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    "manifest",
    [[1, 2], {"format": "scseg-package", "format_version": 1, "files": ["model.json"]}],
)
def test_a_crafted_manifest_is_refused_in_one_line(manifest, package_3d, tmp_path, capsys):
    bad = _rewrite(package_3d, tmp_path / "crafted.scseg", _manifest(manifest))
    assert main(["package", "--info", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and "scseg-package.json" in err, err


def test_a_package_given_as_a_checkpoint_points_to_model(package_3d, data_env, tmp_path, capsys):
    volume = _volume(data_env, tmp_path)
    args = ["predict", "--quiet", "--checkpoint", str(package_3d), "--input", str(volume),
            "--output", str(tmp_path / "out")]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"scseg: error: {package_3d}: a model package, not a checkpoint: give it with --model"
    )
