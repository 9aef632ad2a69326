"""The head-to-head's tables are regenerated from its committed rows byte for byte, by the
harness package ``benchmarks/nnunet/`` (issue: "the head-to-head harness as a package")."""

from __future__ import annotations

import subprocess
import sys

from .conftest import REPO

RESULTS = REPO / "benchmarks" / "results"


def test_report_regenerates_the_committed_tables(tmp_path) -> None:
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "against_nnunet.py"),
                          "report", "--out", str(tmp_path)], cwd=REPO, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    for name in ("against_nnunet.md", "against_nnunet.csv"):
        assert (tmp_path / name).read_bytes() == (RESULTS / name).read_bytes(), name


def test_harness_files_stay_small() -> None:
    sizes = {
        p.name: p.read_text().count("\n") for p in (REPO / "benchmarks" / "nnunet").glob("*.py")
    }
    assert sizes and max(sizes.values()) <= 450, sizes
