"""``scseg cross-validate``: two configurations x two folds through the CLI, the table,
the choice, the package of the ensemble, and a run killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest

from scseg.cli import main

from ..data.test_scripts import _script

FIT = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
       "--trainer.limit_val_batches", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def small_scans(data_env, tmp_path_factory):
    """Four of the real T1's tissue blocks, cut to 48 x 40 x 24 voxels (1 mm): an MSD
    folder without dataset.json, small enough for four fits in a test."""
    full = _script("own_scans").prepare(tmp_path_factory.mktemp("full"), quiet=True)
    root = tmp_path_factory.mktemp("small") / "scans"
    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(parents=True)
        for path in sorted((full / sub).iterdir())[:4]:
            image = nib.load(path)
            array = np.asarray(image.dataobj)[60:108, 30:70, 10:34]
            nib.save(nib.Nifti1Image(array, image.affine, image.header), root / sub / path.name)
    return root


def _kill_after(command: list[str], marker, timeout: float = 240.0) -> None:
    """Runs ``command`` in a process group of its own and kills the group (the fits
    with it) once ``marker`` exists."""
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while not marker.exists():
            assert proc.poll() is None, f"ended ({proc.returncode}) before {marker} appeared"
            assert time.monotonic() < deadline, f"{marker} did not appear"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_cross_validate_chooses_packs_the_ensemble_and_resumes(
    small_scans, tmp_path, capsys
) -> None:
    plan = tmp_path / "own.yaml"
    assert main(["plan", "--data", str(small_scans), "--out", str(plan), "--spacing", "2",
                 "2", "2", "--folds", "2", "--device", "cpu", "--epochs", "1"]) == 0  # fmt: skip
    assert f"next: scseg cross-validate --plan {plan}" in capsys.readouterr().out
    assert (tmp_path / "own_2d.yaml").is_file()  # both configurations, one split
    out = tmp_path / "cv"
    first = out / "3d" / "fold_0" / "trained.json"
    _kill_after([sys.executable, "-m", "scseg.cli", "cross-validate", "--plan", str(plan),
                 "--out", str(out), *FIT], first)  # fmt: skip
    kept = out / "3d" / "fold_0" / "checkpoints" / "last.ckpt"
    stamp = kept.stat().st_mtime_ns
    assert main(["cross-validate", "--plan", str(plan), "--out", str(out), *FIT]) == 0
    printed = capsys.readouterr().out
    assert "3d fold 0: trained, kept" in printed and kept.stat().st_mtime_ns == stamp
    for fold in ("3d fold 1", "2d fold 0", "2d fold 1"):
        assert f"{fold}: training" in printed or f"{fold}: resuming" in printed, fold
    summary = json.loads((out / "cross_validation.json").read_text())
    means = {c["name"]: c["mean_dice"] for c in summary["candidates"]}
    assert set(means) == {"3d", "2d", "3d+2d"}
    best = max(means, key=means.get)
    assert summary["chosen"] == summary["best"] == best
    assert f"{best} (chosen)" in printed and "behind best" in printed
    assert all(name in printed for name in means)
    assert (out / f"{best.replace('+', '_')}.scseg").is_file()
    # every case of the two folds scored once per configuration, as scseg evaluate does
    cases = {c for f in json.loads((tmp_path / "own_split.json").read_text())["folds"]
             for c in f["val"]}  # fmt: skip
    for name in ("3d", "2d", "3d+2d"):
        assert {p.name.split(".")[0] for p in (out / name / "predictions").glob("*.nii.gz")
                if "_probabilities" not in p.name} == cases  # fmt: skip

    # the user's choice overrides; the ensemble's package predicts the members' mean
    assert main(["cross-validate", "--plan", str(plan), "--out", str(out), "--choose",
                 "3d+2d", *FIT]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "3d+2d (chosen)" in printed and "chosen: 3d+2d (chosen by you)" in printed
    case = sorted(cases)[0]
    image = small_scans / "imagesTr" / f"{case}.nii.gz"
    probs = {}
    for name in ("3d", "2d"):
        folds = [str(out / name / f"fold_{k}" / "checkpoints" / "last.ckpt") for k in (0, 1)]
        package = tmp_path / f"{name}.scseg"
        assert main(["package", "--checkpoint", *folds, "--out", str(package)]) == 0
        probs[name] = _predict(package, image, tmp_path / f"pred_{name}", case)[1]
    labels, mean = _predict(out / "3d_2d.scseg", image, tmp_path / "pred_ensemble", case)
    np.testing.assert_allclose(mean, (probs["3d"] + probs["2d"]) / 2, atol=1e-6)
    assert np.array_equal(labels, mean.argmax(-1))
    assert not np.array_equal(probs["3d"].argmax(-1), probs["2d"].argmax(-1))  # a real mean
    capsys.readouterr()
    assert main(["package", "--info", str(out / "3d_2d.scseg")]) == 0
    card = capsys.readouterr().out
    assert "An ensemble of 2 configurations (3d, 2d)" in card and "## Cross-validation" in card


def _predict(package, image, folder, case) -> tuple[np.ndarray, np.ndarray]:
    assert main(["predict", "--model", str(package), "--input", str(image), "--output",
                 str(folder), "--probabilities", "--quiet"]) == 0  # fmt: skip
    labels = np.asarray(nib.load(folder / f"{case}.nii.gz").dataobj)
    probs = np.asarray(nib.load(folder / f"{case}_probabilities.nii.gz").dataobj, np.float32)
    assert labels.shape == nib.load(image).shape  # the input's own grid
    return labels, probs


def test_bad_configurations_are_one_line_errors(small_scans, tmp_path, capsys) -> None:
    plan = tmp_path / "one.yaml"
    assert main(["plan", "--data", str(small_scans), "--out", str(plan), "--spacing", "2",
                 "2", "2", "--device", "cpu"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["cross-validate", "--plan", str(plan)]) == 1
    err = capsys.readouterr().err
    assert "one_split.json: has no folds to cross-validate on: plan with --folds K" in err
    other = tmp_path / "other.yaml"
    assert main(["plan", "--data", str(small_scans), "--out", str(other), "--spacing", "2",
                 "2", "2", "--device", "cpu", "--folds", "2", "--dims", "3"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["cross-validate", "--config", str(other), str(tmp_path / "one_2d.yaml")]) == 1
    assert "the folds must be shared" in capsys.readouterr().err
    assert main(["cross-validate", "--config", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml: config not found" in capsys.readouterr().err
