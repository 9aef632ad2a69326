"""One NaN or Inf voxel in an input once made the whole prediction background (a z-score
over NaN is NaN everywhere), exit 0. Now it is refused in one line naming the file, or
filled and reported with ``--nonfinite fill``, in 3D and 2D."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import tifffile

from scseg.cli import main


def _predict(*args) -> int:
    return main(["predict", "--quiet", *[str(a) for a in args]])


def _failure(capsys) -> str:
    """The one line that names the failed input, under the run's summary line."""
    summary, *lines = capsys.readouterr().err.strip().splitlines()
    assert summary == "scseg: error: 1 input(s) failed:" and len(lines) == 1
    return lines[0].strip()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_voxel_is_refused_or_filled_in_3d(
    bad, ckpt_3d, data_env, tmp_path, capsys
) -> None:
    whole = nib.load(data_env / "datasets" / "brain_tissue3d" / "imagesTr" / "icbm_superior.nii.gz")
    crop = whole.slicer[50:106, 60:120, 20:70]
    data = np.asarray(crop.dataobj, dtype=np.float32)
    clean, dirty = tmp_path / "clean.nii.gz", tmp_path / "in" / "dirty.nii.gz"
    dirty.parent.mkdir()
    nib.save(nib.Nifti1Image(data, crop.affine), clean)
    data[10, 20, 30] = bad
    nib.save(nib.Nifti1Image(data, crop.affine), dirty)
    assert _predict("--checkpoint", ckpt_3d, "--input", dirty, "--output", tmp_path / "out") == 1
    line = _failure(capsys)
    assert line.startswith(f"{dirty}: ") and "1 NaN/Inf" in line, line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

    args = ("--checkpoint", ckpt_3d, "--output", tmp_path / "filled", "--nonfinite", "fill")
    assert _predict(*args, "--input", dirty) == 0
    assert "scseg: warning:" in capsys.readouterr().err
    assert _predict("--checkpoint", ckpt_3d, "--input", clean, "--output", tmp_path / "ref") == 0
    filled = np.asarray(nib.load(tmp_path / "filled" / "dirty.nii.gz").dataobj)
    ref = np.asarray(nib.load(tmp_path / "ref" / "clean.nii.gz").dataobj)
    assert len(np.unique(ref)) == 3
    assert (filled == ref).mean() > 0.99  # one voxel of 168,000 changed


def test_a_nan_pixel_in_a_float_tiff_is_refused_or_filled(ckpt_2d, data_env, tmp_path, capsys):
    tile = sorted((data_env / "datasets" / "nuclei2d" / "images").glob("*.tif"))[0]
    image = tifffile.imread(tile).astype(np.float32)
    image[5, 7] = np.nan
    (tmp_path / "in").mkdir()
    dirty = tmp_path / "in" / "dirty.tif"
    tifffile.imwrite(dirty, image)
    assert _predict("--checkpoint", ckpt_2d, "--input", dirty, "--output", tmp_path / "out") == 1
    line = _failure(capsys)
    assert line.startswith(f"{dirty}: ") and "NaN/Inf" in line, line
    args = ("--checkpoint", ckpt_2d, "--output", tmp_path / "filled", "--nonfinite", "fill")
    assert _predict(*args, "--input", dirty) == 0
    assert "1 NaN/Inf intensity value(s) filled" in capsys.readouterr().err
    assert _predict("--checkpoint", ckpt_2d, "--input", tile, "--output", tmp_path / "ref") == 0
    from PIL import Image

    filled = np.asarray(Image.open(tmp_path / "filled" / "dirty.png"))
    ref = np.asarray(Image.open(tmp_path / "ref" / f"{tile.stem}.png"))
    assert ref.max() > 0 and (filled == ref).mean() > 0.99
