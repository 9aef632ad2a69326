"""Lightning DDP with 2 CPU processes (gloo): training runs in 2D and 3D, and validation
metrics reduced across processes equal the single-process ones on the same data."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from .conftest import REPO

DDP = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
       "--trainer.enable_progress_bar", "false"]  # fmt: skip


def _scseg(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "scseg.cli", *args]
    result = subprocess.run(command, env=os.environ.copy(), capture_output=True, text=True,
                            timeout=timeout)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _val_metrics(root) -> dict[str, float]:
    (path,) = sorted(root.glob("logs/version_*/metrics.csv"))[-1:]
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/dice_mean")]
    return {k: float(v) for k, v in rows[-1].items() if k.startswith("val/") and v}


@pytest.mark.slow
@pytest.mark.xdist_group("slow_configs")
@pytest.mark.parametrize("config", ["quickstart_2d", "quickstart_3d"])
def test_ddp_fit(config, data_env, tmp_path) -> None:
    extra = ["--data.init_args.patch_size", "[32, 32, 32]"] if config == "quickstart_3d" else []
    _scseg("fit", "--config", str(REPO / "configs" / f"{config}.yaml"), *DDP,
           "--trainer.fast_dev_run", "true", "--data.init_args.repeats", "1",
           "--trainer.default_root_dir", str(tmp_path), *extra)  # fmt: skip


@pytest.mark.slow
@pytest.mark.xdist_group("slow_same_result")
def test_ddp_metrics_equal_single_process(ckpt_2d, data_env, tmp_path) -> None:
    """Three validation cases over two processes: a padding sampler would count one twice,
    and an average of the processes' own means would weigh the case alone on one process as
    much as the two on the other. (Four cases, also run here before, need no padding and
    split evenly: their per-case scores hid both faults.)"""
    n_val = 3
    source = data_env / "datasets" / "nuclei2d"
    root = tmp_path / "nuclei"
    shutil.copytree(source, root)
    split = json.loads((root / "split.json").read_text())
    split["val"] = split["val"][:n_val]
    (root / "split.json").write_text(json.dumps(split))
    common = [
        "validate", "--config", str(REPO / "configs" / "quickstart_2d.yaml"),
        "--data.init_args.root", str(root), "--ckpt_path", str(ckpt_2d),
        "--data.init_args.num_workers", "0", "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    _scseg(*common, "--trainer.default_root_dir", str(tmp_path / "one"))
    _scseg(*common, *DDP, "--trainer.default_root_dir", str(tmp_path / "two"))
    one, two = _val_metrics(tmp_path / "one"), _val_metrics(tmp_path / "two")
    assert one.keys() == two.keys()
    for key in one:
        if key != "val/loss":  # the loss is a mean of per-process means
            assert two[key] == pytest.approx(one[key], abs=1e-6), key
