"""A run killed mid-epoch (SIGKILL or SIGTERM) and resumed with ``--ckpt_path last`` ends
exactly as an uninterrupted run with the same seed (deterministic mode, CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from scseg.cli import main

from .conftest import REPO

SETTINGS = [
    "--config", str(REPO / "configs" / "quickstart_2d.yaml"), "--trainer.max_epochs", "3",
    "--trainer.deterministic", "true", "--data.init_args.repeats", "3",
    "--trainer.enable_progress_bar", "false", "--data.init_args.num_workers", "2",
]  # fmt: skip


def _final(root) -> tuple[dict, dict]:
    ckpt = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    return ckpt["state_dict"], {"epoch": ckpt["epoch"], "step": ckpt["global_step"]}


@pytest.fixture(scope="module")
def uninterrupted(data_env, tmp_path_factory) -> tuple[dict, dict]:
    """The run that is never killed: one for both signals (the same seed, the same end)."""
    reference = tmp_path_factory.mktemp("reference")
    assert main(["fit", *SETTINGS, "--trainer.default_root_dir", str(reference)]) == 0
    return _final(reference)


@pytest.mark.slow
@pytest.mark.xdist_group("slow_same_result")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_resumes_to_identical_result(sig, uninterrupted, data_env, tmp_path) -> None:
    ref_state, ref_meta = uninterrupted

    run = tmp_path / "killed"
    command = [sys.executable, "-m", "scseg.cli", "fit", *SETTINGS,
               "--trainer.default_root_dir", str(run)]  # fmt: skip
    log = tmp_path / "killed.log"
    with open(log, "w") as err:  # a file, not a pipe: a full pipe would stall the child
        proc = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.DEVNULL,
                                stderr=err)  # fmt: skip
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert last.exists(), "no checkpoint before the deadline"
    time.sleep(1.5)  # well into the next epoch
    proc.send_signal(sig)
    proc.wait(timeout=120)
    assert proc.returncode != 0
    if sig == signal.SIGTERM:
        assert "resume with --ckpt_path last" in log.read_text()
    assert torch.load(last, weights_only=True)["epoch"] < ref_meta["epoch"], "killed too late"

    assert (
        main(["fit", *SETTINGS, "--trainer.default_root_dir", str(run), "--ckpt_path", "last"]) == 0
    )
    state, meta = _final(run)
    assert meta == ref_meta
    for key, value in ref_state.items():
        assert torch.equal(state[key], value), key
