"""nnU-Net's own environment (made with uv, never scseg's) and the shell commands both
pipelines run through."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from nnunet.settings import DATASETS, ENV, NNUNET, RUNS, TRAINER


def sh(cmd: list, env: dict | None = None, log: Path | None = None) -> float:
    """Runs ``cmd``, its output to ``log``; returns its wall time; raises on failure."""
    start = time.perf_counter()
    with open(log or os.devnull, "w") as out:
        done = subprocess.run([str(c) for c in cmd], env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        tail = Path(log).read_text()[-3000:] if log else ""
        raise SystemExit(f"failed ({done.returncode}): {' '.join(map(str, cmd))}\n{tail}")
    return time.perf_counter() - start


def uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def nnunet_env() -> dict:
    """The isolated nnU-Net environment (made once) and the variables its commands need:
    its PATH, and where its raw and preprocessed datasets are kept."""
    python = ENV / "bin" / "python"
    if not python.exists():
        RUNS.mkdir(parents=True, exist_ok=True)
        sh([*uv(), "venv", "-q", "--python", sys.executable, ENV])
        sh([*uv(), "pip", "install", "-q", "--python", python, NNUNET])
    package = subprocess.run(
        [python, "-c", "import nnunetv2, os; print(os.path.dirname(nnunetv2.__file__))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    variants = Path(package) / "training" / "nnUNetTrainer" / "variants"
    shutil.copy(Path(__file__).with_name(f"{TRAINER}.py"), variants / f"{TRAINER}.py")
    return {
        **os.environ,
        "PATH": f"{ENV / 'bin'}:{os.environ['PATH']}",
        "nnUNet_raw": str(RUNS / "nnunet_raw"),
        "nnUNet_preprocessed": str(RUNS / "nnunet_pre"),
    }


def nnunet_run_env(name: str, env: dict, folder: Path, configuration: str) -> dict:
    """The variables of one nnU-Net run in ``folder``: its results, the axes it mirrors."""
    mirror = DATASETS[name].get("nnunet_mirror_axes", {}).get(configuration, "")
    return {**env, "nnUNet_results": str(folder / "results"), "SCSEG_NNUNET_MIRROR_AXES": mirror}


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()
