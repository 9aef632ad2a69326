"""Every data script's download + conversion, on archives in the real formats."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from scseg.data.download import DownloadError

from .. import fakes
from ..conftest import REPO

SCRIPTS = REPO / "data_scripts"


def _script(name: str):
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location(
            f"data_scripts_{name}", SCRIPTS / f"{name}.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


def _resource(module, archive: Path, filename: str | None = None, md5: str | None = None):
    common = sys.modules["_common"]
    return common.Resource(
        archive.as_uri(), filename or archive.name, md5=md5 or fakes.md5(archive)
    )


def test_msd(tmp_path) -> None:
    msd = _script("msd")
    archive = fakes.msd_task_tar(tmp_path / "Task04_Hippocampus.tar", "Task04_Hippocampus")
    out = tmp_path / "data"
    resources = [_resource(msd, archive)]
    root = msd.prepare(out, "Task04_Hippocampus", resources=resources, quiet=True)
    assert root == out / "Task04_Hippocampus"
    split = json.loads((root / "split.json").read_text())
    assert len(split["train"]) == 4 and len(split["val"]) == 1
    assert not set(split["train"]) & set(split["val"])
    assert not list(root.rglob("._*")), "macOS side files must be dropped"
    assert (root / "dataset.json").is_file() and len(list((root / "labelsTr").iterdir())) == 5
    # Idempotent: a second run neither downloads nor rewrites.
    stamp = (root / "split.json").stat().st_mtime_ns
    archive.unlink()
    assert msd.prepare(out, "Task04_Hippocampus", resources=resources, quiet=True) == root
    assert (root / "split.json").stat().st_mtime_ns == stamp


def test_msd_checksum_failure_leaves_nothing_behind(tmp_path) -> None:
    msd = _script("msd")
    archive = fakes.msd_task_tar(tmp_path / "Task09_Spleen.tar", "Task09_Spleen")
    out = tmp_path / "data"
    bad = [_resource(msd, archive, md5="0" * 32)]
    with pytest.raises(DownloadError, match="checksum does not match"):
        msd.prepare(out, "Task09_Spleen", resources=bad, quiet=True)
    assert not (out / "Task09_Spleen").exists()
    assert not list((out / "downloads").iterdir()), "the bad download must be removed"
    # A later good run completes.
    root = msd.prepare(out, "Task09_Spleen", resources=[_resource(msd, archive)], quiet=True)
    assert (root / "split.json").is_file()


def test_msd_unknown_task_and_cli(tmp_path, capsys) -> None:
    msd = _script("msd")
    with pytest.raises(ValueError, match="Task04_Hippocampus"):
        msd.resource("Task11_Nothing")
    with pytest.raises(SystemExit):
        msd.main(["--task", "Task11_Nothing"])
    assert "invalid choice" in capsys.readouterr().err


def test_conversion_failure_leaves_no_dataset(tmp_path) -> None:
    msd = _script("msd")
    archive = fakes.msd_task_tar(tmp_path / "Task04_Hippocampus.tar", "Task04_Hippocampus")
    # Same archive declared as another task: its folder is not inside.
    resources = [_resource(msd, archive, filename="Task02_Heart.tar")]
    with pytest.raises(ValueError, match=r"no Task02_Heart/dataset\.json"):
        msd.prepare(tmp_path / "data", "Task02_Heart", resources=resources, quiet=True)
    assert not [p for p in (tmp_path / "data").iterdir() if p.name != "downloads"]


def test_oxford_pet(tmp_path) -> None:
    pet = _script("oxford_pet")
    images, annotations = fakes.pet_archives(tmp_path)
    resources = [_resource(pet, images), _resource(pet, annotations)]
    root = pet.prepare(tmp_path / "data", resources=resources, quiet=True)
    split = json.loads((root / "split.json").read_text())
    assert split == {
        "train": ["Abyssinian_1", "Bombay_2", "beagle_3"],
        "val": ["pug_4", "Sphynx_5"],
    }
    mask = np.asarray(Image.open(root / "masks" / "pug_4.png"))
    assert set(np.unique(mask)) == {0, 1, 2}
    assert (mask[0] == 2).all()  # trimap 3 (border) -> class 2
    with Image.open(root / "images" / "Bombay_2.jpg") as im:
        assert im.mode == "RGB"  # greyscale originals become 3-channel


def test_pascal_voc(tmp_path) -> None:
    voc = _script("pascal_voc")
    archive = fakes.voc_tar(tmp_path / "VOCtrainval_11-May-2012.tar")
    root = voc.prepare(tmp_path / "data", resources=[_resource(voc, archive)], quiet=True)
    assert root.name == "VOC2012"
    split = json.loads((root / "split.json").read_text())
    assert len(split["train"]) == 3 and len(split["val"]) == 2
    mask = np.asarray(Image.open(root / "SegmentationClass" / "2007_000032.png"))
    assert 255 in mask and mask.max() == 255 and set(np.unique(mask)) <= set(range(21)) | {255}


def test_kvasir_seg(tmp_path) -> None:
    kvasir = _script("kvasir_seg")
    archive = fakes.kvasir_zip(tmp_path / "kvasir-seg.zip")
    root = kvasir.prepare(tmp_path / "data", resources=[_resource(kvasir, archive)], quiet=True)
    split = json.loads((root / "split.json").read_text())
    assert len(split["train"]) + len(split["val"]) == 6
    mask = np.asarray(Image.open(root / "masks" / f"{split['val'][0]}.png"))
    assert set(np.unique(mask)) == {0, 1}  # JPEG grey levels thresholded


def test_samples_script_and_scseg_data(data_env, capsys) -> None:
    samples = _script("samples")
    assert samples.main(["nuclei2d", "--out", str(data_env), "--quiet"]) == 0
    assert (data_env / "datasets" / "nuclei2d" / "split.json").is_file()
    from scseg.cli import main

    assert main(["data", "tumour3d", "--out", str(data_env)]) == 0
    assert "tumour3d" in capsys.readouterr().out


def test_affines_of_fake_msd_are_kept(tmp_path) -> None:
    msd = _script("msd")
    archive = fakes.msd_task_tar(tmp_path / "Task04_Hippocampus.tar", "Task04_Hippocampus")
    root = msd.prepare(tmp_path / "d", "Task04_Hippocampus", resources=[_resource(msd, archive)])
    image = nib.load(root / "imagesTr" / "hippocampus_001.nii.gz")
    np.testing.assert_allclose(image.affine, np.diag([1.0, 1.0, 1.2, 1.0]))
