"""The head-to-head's tables, and the learning curves drawn from the same rows, are
regenerated from its committed rows byte for byte, by the harness package
``benchmarks/nnunet/`` (issue: "the head-to-head harness as a package")."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO

RESULTS = REPO / "benchmarks" / "results"


@pytest.mark.parametrize(
    ("script", "names"),
    [
        ("against_nnunet.py", ["against_nnunet.md", "against_nnunet.csv"]),
        # the learning curves, from the same rows (and a drawn plot beside them)
        ("learning_curves.py", ["learning_curves.md", "learning_curves.csv"]),
    ],
)
def test_report_regenerates_the_committed_tables(tmp_path, script: str, names: list) -> None:
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "report", "--out",
                          str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    for name in names:
        assert (tmp_path / name).read_bytes() == (RESULTS / name).read_bytes(), name
    if script == "learning_curves.py":
        assert (tmp_path / "learning_curves.png").stat().st_size > 10_000


def test_harness_files_stay_small() -> None:
    sizes = {
        p.name: p.read_text().count("\n") for p in (REPO / "benchmarks" / "nnunet").glob("*.py")
    }
    assert sizes and max(sizes.values()) <= 450, sizes
