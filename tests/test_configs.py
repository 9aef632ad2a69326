"""A fast_dev_run of every config in configs/, each on data in its own layout: the real
samples for the quickstarts, and archives in the public datasets' formats converted by the
data scripts for the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scseg.cli import main

from . import fakes
from .conftest import REPO
from .data.test_scripts import _resource, _script

CONFIGS = sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))
SMALL_3D = ["--data.init_args.patch_size", "[16, 16, 16]", "--data.init_args.batch_size", "1"]
SMALL_2D = ["--data.init_args.patch_size", "[32, 32]", "--data.init_args.batch_size", "2"]


def _msd(tmp: Path, task: str, **kw) -> Path:
    msd = _script("msd")
    archive = fakes.msd_task_tar(tmp / f"{task}.tar", task, **kw)
    return msd.prepare(tmp / "data", task, resources=[_resource(msd, archive)], quiet=True)


def _offline_encoder(config: str) -> list[str]:
    options = {"encoder_name": "resnet18", "encoder_weights": None}
    return ["--model.model_options", json.dumps(options)]


def _data_for(config: str, tmp: Path) -> list[str]:
    if config == "quickstart_2d":
        return ["--data.init_args.repeats", "1"]
    if config == "quickstart_3d":
        return [*SMALL_3D, "--data.init_args.repeats", "1"]
    if config == "brain_parcellation_3d":
        return [*SMALL_3D, "--data.init_args.repeats", "1"]
    if config == "brain_parcellation_3d_prior":  # one native subject, one training copy
        return [*SMALL_3D, "--data.init_args.repeats", "1", "--data.init_args.native", "1",
                "--data.init_args.registered_copies", "1"]  # fmt: skip
    if config == "brain_parcellation_2d":
        return [*SMALL_2D, "--data.init_args.repeats", "1"]
    if config == "msd_hippocampus":
        return ["--data.init_args.root", str(_msd(tmp, "Task04_Hippocampus")), *SMALL_3D]
    if config == "msd_spleen":
        root = _msd(tmp, "Task09_Spleen", classes=2, modality="CT")
        # Five levels of stride 2 need 32 voxels for instance norm to see more than one.
        return ["--data.init_args.root", str(root), "--data.init_args.patch_size", "[32, 32, 32]"]
    if config == "oxford_pet":
        pet = _script("oxford_pet")
        resources = [_resource(pet, a) for a in fakes.pet_archives(tmp)]
        root = pet.prepare(tmp / "data", resources=resources, quiet=True)
    elif config == "pascal_voc":
        voc = _script("pascal_voc")
        archive = fakes.voc_tar(tmp / "VOCtrainval_11-May-2012.tar")
        root = voc.prepare(tmp / "data", resources=[_resource(voc, archive)], quiet=True)
    elif config == "kvasir_seg":
        kvasir = _script("kvasir_seg")
        archive = fakes.kvasir_zip(tmp / "kvasir-seg.zip")
        root = kvasir.prepare(tmp / "data", resources=[_resource(kvasir, archive)], quiet=True)
    else:
        raise AssertionError(f"configs/{config}.yaml has no test data: add it here")
    return ["--data.init_args.root", str(root), *SMALL_2D, *_offline_encoder(config)]


@pytest.mark.parametrize("config", CONFIGS)
def test_config_fast_dev_run(config: str, data_env, tmp_path) -> None:
    args = [
        "fit", "--config", str(REPO / "configs" / f"{config}.yaml"),
        "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path / "run"),
        "--data.init_args.num_workers", "0", *_data_for(config, tmp_path),
    ]  # fmt: skip
    assert main(args) == 0


def test_every_config_is_listed() -> None:
    assert {"quickstart_2d", "quickstart_3d", "msd_hippocampus", "msd_spleen", "oxford_pet",
            "pascal_voc", "kvasir_seg", "brain_parcellation_2d",
            "brain_parcellation_3d"} <= set(CONFIGS)  # fmt: skip
