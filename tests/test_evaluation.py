"""``scseg evaluate``: scores, conventions, the printed table, and bad input."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from scseg.cli import main

# A real label map with anisotropic voxels, so a spacing mix-up would show.
SPACING = (0.9, 1.1, 2.5)


def _label_volume(path, labels: np.ndarray, spacing=SPACING) -> None:
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = (-40.0, -50.0, 10.0)
    nib.save(nib.Nifti1Image(labels.astype(np.uint8), affine), path)


@pytest.fixture(scope="module")
def folders(data_env, tmp_path_factory):
    """truth/ and pred/ of two cases cut from the real brain tissue sample: the prediction
    is the truth with white matter grown by a voxel and part of it shifted, so every score
    is somewhere between perfect and useless."""
    from scseg.data.samples import prepare_sample

    root = prepare_sample("brain_tissue3d")
    labels = np.asarray(nib.load(root / "labelsTr" / "icbm_inferior.nii.gz").dataobj)
    base = tmp_path_factory.mktemp("evaluate")
    (base / "truth").mkdir()
    (base / "pred").mkdir()
    for case, corner in (("a", (50, 60, 40)), ("b", (90, 100, 50))):
        truth = labels[
            corner[0] : corner[0] + 64, corner[1] : corner[1] + 56, corner[2] : corner[2] + 40
        ]
        pred = truth.copy()
        pred[ndimage.binary_dilation(truth == 2) & (truth == 1)] = 2
        pred[:20] = np.roll(pred[:20], 2, axis=1)
        _label_volume(base / "truth" / f"{case}.nii.gz", truth)
        _label_volume(base / "pred" / f"{case}.nii.gz", pred)
    return base


def _evaluate(base, *extra: str) -> int:
    args = ["evaluate", "--prediction", str(base / "pred"), "--truth", str(base / "truth")]
    return main([*args, *extra])


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _uv() -> list[str]:
    return ["uv"] if shutil.which("uv") else ["python3", "-m", "uv"]


REFERENCE = """
import json, sys
import nibabel as nib, numpy as np
import surface_distance as sd
import seg_metrics.seg_metrics as sg
out = {}
for case in sys.argv[3:]:
    t = np.asarray(nib.load(f"{sys.argv[2]}/{case}.nii.gz").dataobj).astype(int)
    p = np.asarray(nib.load(f"{sys.argv[1]}/{case}.nii.gz").dataobj).astype(int)
    spacing = tuple(float(s) for s in nib.load(f"{sys.argv[2]}/{case}.nii.gz").header.get_zooms())
    sgm = sg.write_metrics(labels=[1, 2], gdth_img=t, pred_img=p, spacing=spacing,
                           metrics=["dice", "jaccard", "hd95", "msd"])[0]
    for i, c in enumerate((1, 2)):
        d = sd.compute_surface_distances(t == c, p == c, spacing)
        out[f"{case}/{c}"] = dict(
            dice=sd.compute_dice_coefficient(t == c, p == c),
            hd95=sd.compute_robust_hausdorff(d, 95),
            nsd=sd.compute_surface_dice_at_tolerance(d, 1.5),
            sg_dice=sgm["dice"][i], sg_iou=sgm["jaccard"][i], sg_hd95=sgm["hd95"][i],
            sg_msd=sgm["msd"][i],
        )
print(json.dumps(out, default=float))
"""


def test_scores_match_surface_distance_and_seg_metrics(folders, tmp_path) -> None:
    """Cross-check against DeepMind's surface-distance and seg-metrics (SimpleITK), from
    PyPI, in an environment of their own (uv, cached after the first run).

    Dice, IoU and NSD have one definition and agree to 1e-4. HD95 and MSD do not: we take
    MONAI's (percentile / mean of the distances of surface voxels, both directions),
    surface-distance weights surface elements by area and seg-metrics uses SimpleITK's
    contours; they agree within a voxel."""
    out = tmp_path / "scores.csv"
    assert _evaluate(folders, "--out", str(out), "--tolerance", "1.5") == 0
    ours = {f"{r['case']}/{r['class']}": r for r in _rows(out)}
    script = tmp_path / "reference.py"
    script.write_text(REFERENCE)
    packages = ["surface-distance==0.1", "seg-metrics==1.2.8", "nibabel"]
    command = [*_uv(), "run", "--isolated", "--no-project", "--quiet",
               *[a for p in packages for a in ("--with", p)], "python", str(script),
               str(folders / "pred"), str(folders / "truth"), "a", "b"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    reference = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(reference) == set(ours)
    voxel = max(SPACING)
    for key, ref in reference.items():
        row = {
            k: float(v) for k, v in ours[key].items() if k in ("dice", "iou", "hd95", "msd", "nsd")
        }
        assert 0.3 < row["dice"] < 0.999, key  # neither trivial nor useless
        assert row["dice"] == pytest.approx(ref["dice"], abs=1e-4)
        assert row["dice"] == pytest.approx(ref["sg_dice"], abs=1e-4)
        assert row["iou"] == pytest.approx(ref["sg_iou"], abs=1e-4)
        assert row["nsd"] == pytest.approx(ref["nsd"], abs=1e-4)
        assert row["hd95"] > 0 and abs(row["hd95"] - ref["hd95"]) <= voxel
        assert abs(row["hd95"] - ref["sg_hd95"]) <= voxel
        assert abs(row["msd"] - ref["sg_msd"]) <= voxel / 2


def test_table_and_csv_show_every_case_and_class(folders, tmp_path, capsys) -> None:
    out = tmp_path / "scores.csv"
    assert _evaluate(folders, "--out", str(out), "--classes", "bg", "grey", "white") == 0
    printed = capsys.readouterr().out
    rows = _rows(out)
    assert [(r["case"], r["name"]) for r in rows] == [
        ("a", "grey"), ("a", "white"), ("b", "grey"), ("b", "white")
    ]  # fmt: skip
    mean_dice = np.mean([float(r["dice"]) for r in rows if r["name"] == "white"])
    worst = min((r for r in rows if r["name"] == "white"), key=lambda r: float(r["dice"]))
    white = next(line for line in printed.splitlines() if line.startswith("│ white"))
    assert f"{mean_dice:.4f}" in white and f"{worst['case']} ({float(worst['dice']):.3f})" in white
    assert "│ mean" in printed and "NSD at 1 mm" in printed
    assert f"2 case(s), 2 class(es); per case and class: {out}" in printed


def test_identical_maps_and_empty_structures(tmp_path, capsys) -> None:
    """Perfect scores for a copy; a structure absent from both is not scored (an empty
    cell, left out of the mean); absent from one only, it scores 0 and the diagonal."""
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    truth.mkdir(), pred.mkdir()
    ball = np.zeros((30, 30, 20), np.uint8)
    ball[np.linalg.norm(np.indices(ball.shape).T - (15, 15, 10), axis=-1).T < 6] = 1
    _label_volume(truth / "same.nii.gz", ball)
    _label_volume(pred / "same.nii.gz", ball)
    _label_volume(truth / "missed.nii.gz", ball * 2)  # class 2 only
    _label_volume(pred / "missed.nii.gz", np.zeros_like(ball))
    out = tmp_path / "s.csv"
    assert (
        main(["evaluate", "--prediction", str(pred), "--truth", str(truth), "--out", str(out)]) == 0
    )
    rows = {(r["case"], r["class"]): r for r in _rows(out)}
    same = rows[("same", "1")]
    assert (float(same["dice"]), float(same["iou"]), float(same["nsd"])) == (1.0, 1.0, 1.0)
    assert float(same["hd95"]) == 0.0 and float(same["msd"]) == 0.0
    assert rows[("same", "2")]["dice"] == "" and rows[("missed", "1")]["dice"] == ""
    missed = rows[("missed", "2")]
    diagonal = math.dist((0, 0, 0), np.array(ball.shape) * SPACING)
    assert float(missed["dice"]) == 0.0 and float(missed["nsd"]) == 0.0
    assert float(missed["hd95"]) == pytest.approx(diagonal, rel=1e-5)
    assert (missed["truth_voxels"], missed["predicted_voxels"]) == (str(int(ball.sum())), "0")
    printed = capsys.readouterr().out
    assert "│ 1     │ 1 │ 1.0000" in printed  # class 1 scored in one case only


def test_png_masks_in_pixels(data_env, tmp_path, capsys) -> None:
    from scseg.data.samples import prepare_sample

    masks = prepare_sample("nuclei2d") / "masks"
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    truth.mkdir(), pred.mkdir()
    for path in sorted(masks.glob("*.png"))[:3]:
        mask = np.asarray(Image.open(path))
        Image.fromarray(mask).save(truth / path.name)
        Image.fromarray(ndimage.binary_erosion(mask > 0).astype(np.uint8)).save(pred / path.name)
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(pred / f"{path.stem}_overlay.png")
    out = tmp_path / "s.csv"
    assert (
        main(["evaluate", "--prediction", str(pred), "--truth", str(truth), "--out", str(out)]) == 0
    )
    rows = _rows(out)
    assert len(rows) == 3 and all(0.5 < float(r["dice"]) < 1 for r in rows)
    # eroded by one pixel (small nuclei vanish: a little further at the 95th percentile)
    assert all(1.0 <= float(r["hd95"]) < 3.0 for r in rows)
    assert "HD95, MSD in px" in capsys.readouterr().out


def _error(capsys, *args) -> str:
    assert main(["evaluate", *map(str, args)]) != 0
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scseg: error: "), captured.err
    return lines[0]


def test_bad_input_one_line_each(folders, tmp_path, capsys) -> None:
    out = tmp_path / "s.csv"
    pred, truth = folders / "pred", folders / "truth"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no label maps" in _error(
        capsys, "--prediction", pred, "--truth", empty, "--out", out
    )
    assert "--prediction folder not found" in _error(
        capsys, "--prediction", tmp_path / "nope", "--truth", truth, "--out", out
    )
    # a truth case without its prediction
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(pred / "a.nii.gz", partial)
    line = _error(capsys, "--prediction", partial, "--truth", truth, "--out", out)
    assert "no prediction for 1 of 2 truth case(s)" in line and ": b" in line
    # mismatched geometry: shape, then affine; both files named
    for name, image in (
        ("shape", nib.Nifti1Image(np.zeros((8, 8, 8), np.uint8), np.eye(4))),
        ("affine", nib.Nifti1Image(
            np.asanyarray(nib.load(pred / "b.nii.gz").dataobj), np.diag([1.0, 1.0, 1.0, 1.0]))),
    ):  # fmt: skip
        bad = tmp_path / f"bad_{name}"
        bad.mkdir()
        shutil.copy(pred / "a.nii.gz", bad)
        nib.save(image, bad / "b.nii.gz")
        line = _error(capsys, "--prediction", bad, "--truth", truth, "--out", out)
        assert str(bad / "b.nii.gz") in line and str(truth / "b.nii.gz") in line
        assert ("shapes differ" if name == "shape" else "affines differ") in line
    # unknown classes: label 2 present, two names given
    line = _error(
        capsys, "--prediction", pred, "--truth", truth, "--out", out, "--classes", "bg", "grey"
    )
    assert "label value 2 is not among the 2 classes (bg, grey)" in line
    # probabilities are not a label map
    floats = tmp_path / "floats"
    floats.mkdir()
    shutil.copy(pred / "a.nii.gz", floats)
    nib.save(
        nib.Nifti1Image(np.full((64, 56, 40), 0.3, np.float32), np.eye(4)), floats / "b.nii.gz"
    )
    assert "not a label map" in _error(
        capsys, "--prediction", floats, "--truth", truth, "--out", out
    )
    # a label table edited by hand: a space where the tab was
    tabled = tmp_path / "tabled"
    shutil.copytree(pred, tabled)
    (tabled / "a.tsv").write_text("index\tname\n0\tbackground\n1 grey\n")
    line = _error(capsys, "--prediction", tabled, "--truth", truth, "--out", out)
    assert str(tabled / "a.tsv") in line and "line 3 is not a whole-number index" in line
    assert not out.exists()  # nothing written by any of these
    # unwritable output, and an existing one
    blocked = tmp_path / "a_file"  # a file where the output's folder would be
    blocked.write_text("")
    line = _error(capsys, "--prediction", pred, "--truth", truth, "--out", blocked / "s.csv")
    assert "cannot write here" in line
    out.write_text("mine")
    assert "exists; pass --overwrite" in _error(
        capsys, "--prediction", pred, "--truth", truth, "--out", out
    )
    assert out.read_text() == "mine"


def test_split_scores_its_validation_cases_only(folders, tmp_path, capsys) -> None:
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["a"], "val": ["b"]}))
    out = tmp_path / "s.csv"
    assert _evaluate(folders, "--out", str(out), "--split", str(split)) == 0
    assert {r["case"] for r in _rows(out)} == {"b"}
    split.write_text(json.dumps({"train": ["a"], "val": ["c"]}))
    assert "no truth for case(s) c" in _error(capsys, "--prediction", folders / "pred", "--truth",
                                              folders / "truth", "--out", tmp_path / "t.csv",
                                              "--split", split)  # fmt: skip


def test_defect3_a_split_with_folds_scores_the_named_fold(folders, tmp_path, capsys) -> None:
    """Review defect 3: --split scored the top-level 'val' list, which scseg plan --folds
    draws apart from the folds, so a fold's model was scored on cases it trained on."""
    from scseg.planning.split import make_split

    split = make_split(["a", "b"], seed=0, folds=2)
    assert split["folds"][1]["val"] != split["val"]  # the trap: top level differs from fold 1
    path = tmp_path / "split.json"
    path.write_text(json.dumps(split))
    for fold in (0, 1):
        out = tmp_path / f"fold{fold}.csv"
        assert _evaluate(folders, "--out", str(out), "--split", str(path), "--fold", str(fold)) == 0
        scored = {r["case"] for r in _rows(out)}
        assert scored == set(split["folds"][fold]["val"])
        assert not scored & set(split["folds"][fold]["train"])
    err = _error(capsys, "--prediction", folders / "pred", "--truth", folders / "truth",
                 "--out", tmp_path / "none.csv", "--split", path)  # fmt: skip
    assert "has folds; name the one the model trained on with --fold K" in err
    assert "fold 2 asked, the file has folds 0..1" in _error(
        capsys, "--prediction", folders / "pred", "--truth", folders / "truth",
        "--out", tmp_path / "none.csv", "--split", path, "--fold", 2,
    )  # fmt: skip
    assert not (tmp_path / "none.csv").exists()


def test_mean_dice_over_the_structures_in_truth() -> None:
    from scseg.evaluation import mean_dice

    truth = np.array([0, 1, 1, 2, 2, 2, 0, 0])
    guess = np.array([0, 1, 0, 2, 2, 3, 3, 0])  # 1: 2*1/(2+1); 2: 2*2/(3+2); 3 not in truth
    assert mean_dice(truth, guess) == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert mean_dice(truth, np.zeros_like(truth)) == 0.0
    assert mean_dice(truth, truth) == 1.0


def test_surface_metrics_on_the_joint_box_equal_the_whole_volume() -> None:
    """score_class measures each structure on the bounding box of prediction and truth:
    the same HD95, MSD and NSD as MONAI on the whole volume, for a pair in the interior,
    one touching the volume's edge, and one pair far apart."""
    import torch
    from monai.metrics import (
        compute_average_surface_distance,
        compute_hausdorff_distance,
        compute_surface_dice,
    )

    from scseg.evaluation import score_class

    rng = np.random.default_rng(0)
    spacing = [1.0, 1.5, 2.0]
    for shift in ((20, 20, 20), (0, 30, 0), (40, 5, 30)):
        truth = np.zeros((60, 50, 40), bool)
        truth[15:30, 10:25, 12:20] = True
        pred = np.zeros_like(truth)
        x, y, z = shift
        pred[x : x + 12, y : y + 14, z : z + 6] = rng.random((12, 14, 6)) > 0.2
        got = score_class(pred, truth, spacing, 1.5)
        p, t = torch.from_numpy(pred)[None, None], torch.from_numpy(truth)[None, None]
        expected = {
            "hd95": compute_hausdorff_distance(p, t, True, percentile=95, spacing=spacing),
            "msd": compute_average_surface_distance(p, t, True, symmetric=True, spacing=spacing),
            "nsd": compute_surface_dice(p, t, [1.5], True, spacing=spacing, use_subvoxels=True),
        }
        for metric, value in expected.items():
            assert got[metric] == pytest.approx(float(value), rel=1e-6), (shift, metric)


def test_a_0_255_mask_is_refused_not_scored_as_256_classes(tmp_path, capsys) -> None:
    """2D prediction writes no .tsv, so a PNG truth of 0/255 against a 0/1 prediction
    once gave class 1 Dice 0 and a class "255", exit 0."""
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    truth.mkdir(), pred.mkdir()
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 10:24] = 1
    Image.fromarray(mask * 255).save(truth / "tile.png")
    Image.fromarray(mask).save(pred / "tile.png")
    out = tmp_path / "s.csv"
    line = _error(capsys, "--prediction", pred, "--truth", truth, "--out", out)
    assert str(truth / "tile.png") in line and "label value 255" in line
    assert "(2..254)" in line and "0/255 mask" in line
    assert not out.exists()
    Image.fromarray(mask).save(truth / "tile.png")  # as the message says: 0/1
    assert (
        main(["evaluate", "--prediction", str(pred), "--truth", str(truth), "--out", str(out)]) == 0
    )
    assert [float(r["dice"]) for r in _rows(out)] == [1.0]


def test_background_only_cases_and_ignore_label_0(tmp_path, capsys) -> None:
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    truth.mkdir(), pred.mkdir()
    empty = np.zeros((10, 10, 6), np.uint8)
    _label_volume(truth / "a.nii.gz", empty)
    _label_volume(pred / "a.nii.gz", empty)
    out = tmp_path / "s.csv"
    line = _error(capsys, "--prediction", pred, "--truth", truth, "--out", out)
    assert "background only" in line and "1 case(s)" in line and not out.exists()
    # --ignore-label 0 was accepted, then dropped (0 is falsy): now it is applied
    labels = np.zeros((10, 10, 6), np.uint8)
    labels[2:6, 2:6, 1:4] = 1
    _label_volume(truth / "a.nii.gz", labels)
    guess = labels.copy()
    guess[7:9, 7:9, :] = 1  # predicted where the truth has 0 (not annotated, if told so)
    _label_volume(pred / "a.nii.gz", guess)
    args = ["evaluate", "--prediction", str(pred), "--truth", str(truth), "--out", str(out)]
    assert main(args) == 0
    assert float(_rows(out)[0]["dice"]) < 1.0
    assert main([*args, "--overwrite", "--ignore-label", "0"]) == 0
    assert float(_rows(out)[0]["dice"]) == 1.0
    assert "truth label 0 means not annotated" in capsys.readouterr().out
