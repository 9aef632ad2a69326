"""``scseg plan``: fingerprint, rules, split, the written config, and bad input."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import yaml

from scseg.cli import main
from scseg.planning.fingerprint import Case, Fingerprint
from scseg.planning.rules import target_spacing
from scseg.planning.split import make_split

from ..data.test_scripts import _script


@pytest.fixture(scope="module")
def own_scans(data_env, tmp_path_factory):
    """data_scripts/own_scans.py's folder: eight blocks of the real T1, no dataset.json,
    no split."""
    return _script("own_scans").prepare(tmp_path_factory.mktemp("data"), quiet=True)


def _plan(data, out, *extra) -> int:
    return main(["plan", "--data", str(data), "--out", str(out), *map(str, extra)])


def _fit(config, root, *extra) -> int:
    return main(["fit", "--config", str(config), "--trainer.default_root_dir", str(root),
                 "--data.init_args.num_workers", "0", *extra])  # fmt: skip


def test_3d_plan_explains_each_choice_and_trains(own_scans, tmp_path, capsys) -> None:
    out = tmp_path / "mine.yaml"
    assert _plan(own_scans, out, "--memory", "0.5", "--folds", "3", "--device", "cpu") == 0
    printed = capsys.readouterr().out
    for seen in ("dataset:", "8 cases", "1 x 1 x 1", "12.57 %", "6 train, 2 val; 3 folds",
                 f"wrote {out}, {tmp_path / 'mine_2d.yaml'} and {tmp_path / 'mine_split.json'}",
                 "smp_unet resnet",
                 f"next: scseg cross-validate --plan {out}"):  # fmt: skip
        assert seen in printed, seen
    text = out.read_text()
    config = yaml.safe_load(text)
    init = config["data"]["init_args"]
    assert config["model"]["arch"] == "unet" and init["spacing"] == [1.0, 1.0, 1.0]
    assert init["intensity"] == "zscore" and init["cache"] == "memory"
    assert "# median spacing of the cases (nnU-Net)" in text
    assert "# MR: z-score over non-zero voxels per image" in text
    # nnU-Net's rotation and scaling, which the fast_dev_run below trains with
    assert init["rotation"] == [0.5235] * 3 and init["zoom"] == [0.7, 1.4]
    assert "# turns of up to 30 degrees about every axis (nnU-Net)" in text
    assert init["intensity_augmentation"] == "nnunet"
    assert "# nnU-Net's noise, blur, brightness, contrast, low resolution and gamma" in text
    # half a GiB: a smaller patch than the median case, of four stages at least
    assert all(p <= s for p, s in zip(init["patch_size"], (197, 116, 47), strict=True))
    assert len(config["model"]["model_options"]["channels"]) >= 3
    # the config sits outside the data folder: the split is named by its absolute path
    assert init["split_file"] == str((tmp_path / "mine_split.json").resolve())
    split = json.loads((tmp_path / "mine_split.json").read_text())
    cases = sorted(split["train"] + split["val"])
    assert len(cases) == 8 and len(split["folds"]) == 3
    assert sorted(c for f in split["folds"] for c in f["val"]) == cases  # each validates once
    # the plan trains (a step and a validation batch: what a fast_dev_run does, and a
    # checkpoint, which a fast_dev_run leaves out), with nnU-Net's turns, zooms and
    # intensity set, on one fold: its own run folder, its validation cases
    code = _fit(
        out,
        tmp_path / "run",
        "--data.init_args.fold",
        "1",
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "1",
        "--trainer.limit_val_batches",
        "1",
    )
    assert code == 0 and (tmp_path / "run" / "fold_1" / "checkpoints" / "last.ckpt").is_file()
    assert "--folds: between 2" not in capsys.readouterr().err


def test_2d_plans_train(data_env, own_scans, tmp_path) -> None:
    """The nuclei sample (2D folder, its split.json kept) and the volumes slice by slice."""
    from scseg.data.samples import prepare_sample

    nuclei = prepare_sample("nuclei2d")
    assert _plan(nuclei, tmp_path / "n.yaml", "--memory", "1", "--device", "cpu") == 0
    config = yaml.safe_load((tmp_path / "n.yaml").read_text())
    assert config["data"]["class_path"] == "scseg.data.Folder2DDataModule"
    assert config["data"]["init_args"]["augment"] == "microscopy"
    kept = json.loads((nuclei / "split.json").read_text())
    assert json.loads((tmp_path / "n_split.json").read_text()) == kept
    assert _fit(tmp_path / "n.yaml", tmp_path / "n", "--trainer.fast_dev_run", "true") == 0
    assert _plan(own_scans, tmp_path / "s.yaml", "--dims", "2", "--memory", "1") == 0
    config = yaml.safe_load((tmp_path / "s.yaml").read_text())
    assert config["data"]["class_path"] == "scseg.data.MSDSlicesDataModule"
    assert all(p % 32 == 0 for p in config["data"]["init_args"]["patch_size"])
    assert config["data"]["init_args"]["intensity_augmentation"] == "nnunet"
    assert config["data"]["init_args"]["slice_sampling"] == "class"
    assert _fit(tmp_path / "s.yaml", tmp_path / "s", "--trainer.fast_dev_run", "true") == 0


def test_ct_detected_and_disk_cache_beyond_the_ram(own_scans, tmp_path) -> None:
    """Intensities below -500 are CT (air in HU): clipped at the foreground's percentiles;
    a dataset over half of --ram is cached on disk."""
    ct = tmp_path / "ct"
    shutil.copytree(own_scans, ct)
    for path in (ct / "imagesTr").iterdir():
        image = nib.load(path)
        data = np.asarray(image.dataobj, np.float32) * 8 - 1000
        nib.save(nib.Nifti1Image(data, image.affine), path)
    assert _plan(ct, tmp_path / "ct.yaml", "--ram", "0.05") == 0
    text = (tmp_path / "ct.yaml").read_text()
    init = yaml.safe_load(text)["data"]["init_args"]
    assert init["intensity"] == "ct" and -100 < init["ct_window"][0] < init["ct_window"][1] < 1000
    assert init["cache"] == "disk" and "over half of --ram 0.05 GiB" in text


def _fingerprint(spacings, shapes) -> Fingerprint:
    cases = [Case(f"c{i}", None, None, tuple(sh), tuple(sp), 1, {0: 1, 1: 1})
             for i, (sp, sh) in enumerate(zip(spacings, shapes, strict=True))]  # fmt: skip
    return Fingerprint(None, "msd", cases)


def test_target_spacing_follows_nnunet() -> None:
    iso = _fingerprint([(1.0, 1.0, 1.2), (0.8, 0.8, 1.0), (1.0, 1.0, 1.0)], [(100, 100, 90)] * 3)
    assert target_spacing(iso)[0].tolist() == [1.0, 1.0, 1.0]  # the median
    # ACDC-like: z over 3x coarser with under a third of the voxels: its 10th percentile
    aniso = _fingerprint([(1.5, 1.5, z) for z in (10, 10, 10, 5, 6)], [(200, 200, 10)] * 5)
    spacing, why = target_spacing(aniso)
    assert spacing[:2].tolist() == [1.5, 1.5] and spacing[2] == pytest.approx(5.4)
    assert "10th percentile" in why


def test_split_keeps_subjects_together() -> None:
    cases = [f"sub-{s:02d}_ses-{t}" for s in range(1, 7) for t in (1, 2)]
    split = make_split(cases, seed=3, folds=3)
    subject = {c: c.split("_")[0] for c in cases}
    for part in [split, *split["folds"]]:
        assert not {subject[c] for c in part["train"]} & {subject[c] for c in part["val"]}
        assert sorted(part["train"] + part["val"]) == sorted(cases)
    assert make_split(cases, seed=3, folds=3) == split  # seeded
    assert make_split(cases, seed=4, folds=3) != split


def _error(capsys, *args) -> str:
    assert main(["plan", *map(str, args)]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("scseg: error: ") and "Traceback" not in err, err
    return err


def test_bad_input(own_scans, tmp_path, capsys) -> None:
    out = tmp_path / "p.yaml"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "neither images/ + masks/ (2D) nor imagesTr/" in _error(
        capsys, "--data", empty, "--out", out
    )
    # images without labels
    unlabelled = tmp_path / "unlabelled"
    shutil.copytree(own_scans, unlabelled)
    for name in ("block1_anterior", "block2_posterior"):
        (unlabelled / "labelsTr" / f"{name}.nii.gz").unlink()
    err = _error(capsys, "--data", unlabelled, "--out", out)
    assert "no label for 2 of 8 image(s): block1_anterior, block2_posterior" in err
    # mismatched geometry, named by case
    mismatched = tmp_path / "mismatched"
    shutil.copytree(own_scans, mismatched)
    label = nib.load(mismatched / "labelsTr" / "block3_anterior.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(label.dataobj)[:, :, :40], label.affine),
             mismatched / "labelsTr" / "block3_anterior.nii.gz")  # fmt: skip
    shifted = nib.load(mismatched / "labelsTr" / "block4_anterior.nii.gz")
    affine = shifted.affine.copy()
    affine[0, 3] += 5
    nib.save(nib.Nifti1Image(np.asarray(shifted.dataobj), affine),
             mismatched / "labelsTr" / "block4_anterior.nii.gz")  # fmt: skip
    err = _error(capsys, "--data", mismatched, "--out", out)
    assert "block3_anterior: image (197, 117, 48) and label (197, 117, 40) differ in shape" in err
    assert "block4_anterior: image and label geometry (affine) differ" in err
    # a single case
    single = tmp_path / "single"
    for folder in ("imagesTr", "labelsTr"):
        (single / folder).mkdir(parents=True)
        shutil.copy(own_scans / folder / "block1_anterior.nii.gz", single / folder)
    assert "one case: no split possible" in _error(capsys, "--data", single, "--out", out)
    # unknown classes: dataset.json names two, a label holds 2; and a gap in the values
    named = tmp_path / "named"
    shutil.copytree(own_scans, named)
    (named / "dataset.json").write_text(json.dumps({
        "labels": {"0": "background", "1": "grey"}, "modality": {"0": "MR"},
        "training": [{"image": f"./imagesTr/{p.name}", "label": f"./labelsTr/{p.name}"}
                     for p in sorted((named / "imagesTr").iterdir())]}))  # fmt: skip
    err = _error(capsys, "--data", named, "--out", out)
    assert "holds label value 2, but dataset.json names 2 classes (0..1)" in err
    gap = tmp_path / "gap"
    shutil.copytree(own_scans, gap)
    path = gap / "labelsTr" / "block2_anterior.nii.gz"
    label = nib.load(path)
    data = np.asarray(label.dataobj).copy()
    data[data == 2] = 5
    nib.save(nib.Nifti1Image(data, label.affine), path)
    err = _error(capsys, "--data", gap, "--out", out)
    assert "label values [0, 1, 2, 5] skip [3, 4] (e.g. block2_anterior holds 5)" in err
    assert not out.exists()
    # unwritable output; an existing one is kept
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    assert "cannot write here" in _error(capsys, "--data", own_scans, "--out", blocked / "p.yaml")
    out.write_text("mine")
    assert "exists; pass --overwrite" in _error(capsys, "--data", own_scans, "--out", out)
    assert out.read_text() == "mine" and not (tmp_path / "p_split.json").exists()


def test_patch_search_ends_at_any_budget() -> None:
    from scseg.planning.rules import fit_patch

    big, widths, batch, _ = fit_patch((1.0, 1.0, 1.0), (200, 200, 200), 3, 80.0, False, 32)
    small, _, _, _ = fit_patch((1.0, 1.0, 1.0), (200, 200, 200), 3, 2.0, False, 32)
    assert np.prod(small) < np.prod(big) and len(widths) >= 5 and batch >= 2
    tiny, _, batch, _ = fit_patch((0.8, 0.8, 5.0), (300, 300, 12), 3, 1e-4, True, 16)
    assert min(tiny) >= 8 and batch == 2  # the smallest patch, never an endless search


def test_patch_is_rounded_up_to_cover_the_median_case() -> None:
    """nnU-Net's pad_shape: with memory to spare, the patch covers the whole median case
    (47 slices get 48, where rounding down would cut them to 40) and every axis divides
    by the deepest pooling."""
    from scseg.planning.rules import fit_patch

    patch, _, _, pools = fit_patch((2.0, 2.0, 2.0), (98, 116, 47), 3, 3.0, True, 16)
    median = (98, 116, 47)
    assert all(p >= s for p, s in zip(patch, median, strict=True))
    divisor = pools.divisor
    assert all(p % d == 0 and p - s < d for p, s, d in zip(patch, median, divisor, strict=True))
    # with less memory, a smaller patch
    smaller, _, _, _ = fit_patch((2.0, 2.0, 2.0), (98, 116, 47), 3, 1.0, True, 16)
    assert np.prod(smaller) < np.prod(patch)


def test_rotation_follows_the_patch_shape_and_the_sides() -> None:
    """nnU-Net turns a patch up to 30 degrees about every axis, but a patch over 3x
    shorter along its coarsest axis up to 180 degrees about that axis only; sided labels
    keep that turn within 30 degrees (a half turn swaps left and right)."""
    from scseg.planning.choices import _spatial_augmentation
    from scseg.planning.rules import Plan

    def rotation(spacing, patch, sided=False):
        plan = Plan()
        _spatial_augmentation(plan, np.asarray(spacing), patch, sided)
        assert plan.values["data.init_args.zoom"] == [0.7, 1.4]
        return plan.values["data.init_args.rotation"], plan.reasons["data.init_args.rotation"]

    assert rotation((1.0, 1.0, 1.0), [128, 128, 128])[0] == [0.5235] * 3
    assert rotation((1.0, 1.0, 1.0), [160, 160, 40])[0] == [0.5235] * 3  # no coarsest axis
    turns, why = rotation((0.8, 0.8, 5.0), [192, 160, 24])
    assert turns == [0.0, 0.0, 3.1415] and "180 degrees about axis 2 only" in why
    turns, why = rotation((0.8, 5.0, 0.8), [192, 24, 160], sided=True)
    assert turns == [0.0, 0.5235, 0.0] and "class names name sides" in why


def _anisotropic_blocks(own_scans, root):
    """The blocks with every second voxel along axis 0: spacing 2 x 1 x 1, under 3x
    anisotropic, so the patch is not flat and turns stay within 30 degrees."""
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True)
        for path in (own_scans / folder).iterdir():
            image = nib.load(path)
            affine = image.affine @ np.diag([2.0, 1.0, 1.0, 1.0])
            nib.save(
                nib.Nifti1Image(np.asarray(image.dataobj)[::2], affine), root / folder / path.name
            )
    return root


@pytest.mark.parametrize(
    ("branch", "rotation"),
    [("flat", [0.0, 0.0, 3.1415]), ("sided", [0.0, 0.0, 0.5235]), ("anisotropic", [0.5235] * 3)],
)
def test_defect1_every_rotation_branch_plans_a_config_that_trains(
    data_env, own_scans, tmp_path, branch, rotation
) -> None:
    """Review defect 1: on the anisotropic tumour sample the plan wrote the half turn as
    3.1416, above pi, and its config did not train. Each branch of the rotation rule
    (isotropic: test_3d_plan_explains_each_choice_and_trains) plans and trains."""
    from scseg.data.samples import prepare_sample

    data = tmp_path / "data"
    if branch == "anisotropic":
        _anisotropic_blocks(own_scans, data)
    else:
        shutil.copytree(prepare_sample("tumour3d"), data)
    if branch == "sided":
        meta = json.loads((data / "dataset.json").read_text())
        meta["labels"] = {"0": "background", "1": "left_tumour"}
        (data / "dataset.json").write_text(json.dumps(meta))
    out = tmp_path / "plan.yaml"
    assert _plan(data, out, "--memory", "0.05", "--device", "cpu") == 0
    planned = yaml.safe_load(out.read_text())
    init, options = planned["data"]["init_args"], planned["model"]["model_options"]
    assert init["rotation"] == rotation
    # nnU-Net's pooling: the coarse axis (the tumours' 2, the blocks' 0 at 2 mm, twice the
    # finest) is not pooled first, and its first kernel spans one voxel
    first = [1, 2, 2] if branch == "anisotropic" else [2, 2, 1]
    assert options["strides"][1] == first
    assert options["kernel_sizes"][0] == [1 + 2 * (s == 2) for s in first]
    divisor = np.prod(np.asarray(options["strides"]), 0)
    assert all(p % d == 0 for p, d in zip(init["patch_size"], divisor, strict=True))
    # one training step with the planned turns: what the defect broke (no validation, which
    # slides over whole tumour volumes and is tested by the isotropic plan's run)
    assert _fit(out, tmp_path / "run", "--trainer.max_steps", "1",
                "--trainer.limit_val_batches", "0") == 0  # fmt: skip


def test_defect1_a_refused_value_is_one_line_naming_the_key(own_scans, tmp_path, capsys) -> None:
    """A value the data module or the model refuses while LightningCLI builds it: one line
    naming the key, not jsonargparse's listing of the Union with the whole Namespace."""
    out = tmp_path / "plan.yaml"
    assert _plan(own_scans, out, "--memory", "0.05", "--device", "cpu") == 0
    capsys.readouterr()
    for key, value, says in [
        ("data.init_args.rotation", "[0, 0, 4]", "rotation must be 3 angles in [0, pi]"),
        ("data.init_args.zoom", "[2, 1]", "zoom must be (low, high)"),
        ("model.scheduler", "sometimes", "scheduler must be one of"),
    ]:
        assert _fit(out, tmp_path / "run", f"--{key}", value) != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert err.startswith(f"scseg: error: {key}: {says}"), err
        assert "Namespace(" not in err and "Union" not in err


def test_defect4_a_pattern_without_a_group_keeps_subjects_together(
    own_scans, tmp_path, capsys
) -> None:
    """Review defect 4: a --subject-pattern without a capture group made every case its
    own subject (sessions of one subject on both sides of the split), and a pattern that
    matches nothing was accepted silently."""
    cases = [f"sub-{s:02d}_ses-{t}" for s in range(1, 7) for t in (1, 2)]
    for pattern in ("sub-[0-9]+", "(sub-[0-9]+)"):
        split = make_split(cases, seed=3, folds=3, pattern=pattern)
        for part in [split, *split["folds"]]:
            train = {c.split("_")[0] for c in part["train"]}
            assert not train & {c.split("_")[0] for c in part["val"]}
        from scseg.planning.split import subjects

        assert sorted(subjects(cases, pattern)) == [f"sub-{s:02d}" for s in range(1, 7)]
    with pytest.raises(ValueError, match="matches none of the 12 case names"):
        make_split(cases, pattern="patient[0-9]+")
    # through scseg plan: the subjects are counted, a pattern matching nothing is refused
    out = tmp_path / "p.yaml"
    assert _plan(own_scans, out, "--subject-pattern", "block[0-9]") == 0
    printed = capsys.readouterr().out
    assert "4 subject(s)" in printed
    split = json.loads((tmp_path / "p_split.json").read_text())
    assert not {c[:6] for c in split["train"]} & {c[:6] for c in split["val"]}
    err = _error(capsys, "--data", own_scans, "--out", tmp_path / "q.yaml",
                 "--subject-pattern", "sub-[0-9]+")  # fmt: skip
    assert "--subject-pattern 'sub-[0-9]+' matches none of the 8 case names" in err
    assert "not a regular expression" in _error(
        capsys, "--data", own_scans, "--out", tmp_path / "q.yaml", "--subject-pattern", "(sub"
    )
    assert not (tmp_path / "q.yaml").exists()
    assert _plan(own_scans, tmp_path / "r.yaml") == 0  # no pattern: each block its own subject
    assert "8 subject(s)" in capsys.readouterr().out


def test_outputs_of_many_classes_count_in_the_patch_budget() -> None:
    """nnU-Net counts its segmentation outputs: at 137 classes (the parcellation) the
    logits of the head and the deep-supervision heads outweigh the features, and the same
    memory buys a smaller patch than at 3 classes."""
    from scseg.planning.rules import feature_units, fit_patch

    few, widths, _, _ = fit_patch((2.0, 2.0, 2.0), (91, 109, 91), 3, 2.0, True, 16, classes=3)
    many, _, _, _ = fit_patch((2.0, 2.0, 2.0), (91, 109, 91), 3, 2.0, True, 16, classes=137)
    assert np.prod(many) < np.prod(few) / 2
    voxels = float(np.prod(few))
    with_heads = feature_units(few, widths, 137, heads=4) - feature_units(few, widths, 137, 0)
    assert with_heads == 4 * 137 * voxels


def test_pooling_is_nnunets_for_thick_slices() -> None:
    """nnU-Net 2.8.1 planned the tumour sample (spacing 2.54 x 0.72 x 0.72 mm, patch
    32 x 128 x 112) as five stages with strides (1,1,1), (1,2,2), (2,2,2) x 3 and kernels
    (1,3,3), (3,3,3) x 4 (runs/against_nnunet, nnUNetPlans 3d_fullres): ours gives the
    same, and an isotropic patch gets 2s and 3s everywhere."""
    from scseg.planning.rules import pooling

    pools = pooling((2.54, 0.72, 0.72), (32, 128, 112))
    assert pools.strides == [(1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2)]
    assert pools.kernels == [(1, 3, 3)] + [(3, 3, 3)] * 4
    assert list(pools.divisor) == [8, 16, 16] and not pools.uniform
    flat = pooling((2.0, 2.0, 2.0), (48, 56, 48))
    assert flat.uniform and len(flat.strides) == 4 and list(flat.divisor) == [8, 8, 8]
