"""A MONAI bundle written by ``scseg export --format monai-bundle``, run by MONAI's own
bundle API (no scseg in its configs), gives the labels ``scseg predict`` gives."""

from __future__ import annotations

import json
import warnings

import monai.bundle
import nibabel as nib
import numpy as np

from scseg.cli import main


def test_monai_runs_the_bundle_to_scsegs_labels(ckpt_3d, data_env, tmp_path) -> None:
    source = nib.load(
        data_env / "datasets" / "brain_tissue3d" / "imagesTr" / "icbm_superior.nii.gz"
    )
    (tmp_path / "in").mkdir()
    volume = tmp_path / "in" / "crop.nii.gz"
    nib.save(source.slicer[50:114, 60:132, 20:68], volume)
    package, bundle = tmp_path / "tissue.scseg", tmp_path / "bundle"
    assert main(["package", "--checkpoint", str(ckpt_3d), "--out", str(package)]) == 0
    assert (
        main(
            ["export", "--model", str(package), "--format", "monai-bundle", "--output", str(bundle)]
        )
        == 0
    )
    config = (bundle / "configs" / "inference.json").read_text()
    assert "scseg" not in config  # MONAI and torch alone run it
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    channels = meta["network_data_format"]["outputs"]["pred"]["channel_def"]
    assert channels == {"0": "background", "1": "grey matter", "2": "white matter"}
    assert "Validation scores" in (bundle / "docs" / "README.md").read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monai.bundle.run(
            config_file=str(bundle / "configs" / "inference.json"),
            bundle_root=str(bundle),
            dataset_dir=str(tmp_path / "in"),
            output_dir=str(tmp_path / "monai"),
        )
    assert (
        main(
            [
                "predict",
                "--quiet",
                "--model",
                str(package),
                "--input",
                str(volume),
                "--output",
                str(tmp_path / "scseg"),
            ]
        )
        == 0
    )
    theirs = nib.load(tmp_path / "monai" / "crop_seg.nii.gz")
    ours = nib.load(tmp_path / "scseg" / "crop.nii.gz")
    labels = np.asarray(theirs.dataobj).reshape(ours.shape)
    np.testing.assert_array_equal(labels, np.asarray(ours.dataobj))
    np.testing.assert_allclose(theirs.affine, ours.affine, atol=1e-5)
    assert len(np.unique(labels)) == 3


def test_a_2d_model_is_not_written_as_a_bundle(ckpt_2d, tmp_path, capsys) -> None:
    out = tmp_path / "bundle"
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(ckpt_2d),
                "--format",
                "monai-bundle",
                "--output",
                str(out),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "3D models only" in err and str(out) in err
    assert not out.exists() and not list(tmp_path.glob(".bundle*"))


def _export(source: list[str], out, *extra: str) -> int:
    return main(["export", *source, "--format", "monai-bundle", "--output", str(out), *extra])


def test_overwrite_never_empties_a_folder_that_is_not_a_bundle(
    ckpt_3d, tmp_path, monkeypatch, capsys
) -> None:
    """``--output . --overwrite`` once emptied the working folder; a folder of other
    files, the working folder, its ancestors and the source's folder are all kept."""
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "notes.txt").write_text("mine")
    (work / "sub" / "keep.txt").write_text("mine too")
    package = work / "tissue.scseg"
    assert main(["package", "--checkpoint", str(ckpt_3d), "--out", str(package)]) == 0
    before = sorted(p.relative_to(work) for p in work.rglob("*"))
    monkeypatch.chdir(work / "sub")
    for out in (".", "..", str(work), str(work / "sub")):
        capsys.readouterr()
        assert _export(["--model", str(package)], out, "--overwrite") == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and out in err, err
    assert sorted(p.relative_to(work) for p in work.rglob("*")) == before
    assert (work / "notes.txt").read_text() == "mine"


def test_overwrite_replaces_a_previous_bundle_whole(ckpt_3d, tmp_path, capsys) -> None:
    bundle = tmp_path / "bundle"
    assert _export(["--checkpoint", str(ckpt_3d)], bundle) == 0
    (bundle / "models" / "model.ts").write_bytes(b"stale")
    assert _export(["--checkpoint", str(ckpt_3d)], bundle) == 1  # no --overwrite
    assert (bundle / "models" / "model.ts").read_bytes() == b"stale"
    assert _export(["--checkpoint", str(ckpt_3d)], bundle, "--overwrite") == 0
    assert (bundle / "models" / "model.ts").read_bytes() != b"stale"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no temporaries left
    # a folder that holds more than a bundle is not replaced
    (bundle / "results.csv").write_text("x")
    capsys.readouterr()
    assert _export(["--checkpoint", str(ckpt_3d)], bundle, "--overwrite") == 1
    assert "not a MONAI bundle" in capsys.readouterr().err
    assert (bundle / "results.csv").exists() and (bundle / "configs" / "inference.json").exists()


def test_a_failed_swap_keeps_the_previous_bundle(ckpt_3d, tmp_path, monkeypatch) -> None:
    from pathlib import Path

    bundle = tmp_path / "bundle"
    assert _export(["--checkpoint", str(ckpt_3d)], bundle) == 0
    old = (bundle / "configs" / "inference.json").read_text()
    rename = Path.rename

    def failing(self, target):
        if Path(target) == bundle and ".bundle." in self.name and ".old." not in self.name:
            raise OSError(28, "No space left on device")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing)
    assert _export(["--checkpoint", str(ckpt_3d)], bundle, "--overwrite") == 1
    assert (bundle / "configs" / "inference.json").read_text() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
