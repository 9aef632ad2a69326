"""``scseg ablate``: every variant x seed trained at one budget, summarised, resumable."""

from __future__ import annotations

import csv

from scseg.cli import main

from ..conftest import REPO


def test_ablate_runs_variants_and_seeds(data_env, tmp_path, capsys) -> None:
    out = tmp_path / "ablation"
    args = [
        "ablate", "--config", str(REPO / "configs" / "quickstart_2d.yaml"), "--seeds", "2",
        "--variants", "none", "scse", "--output", str(out),
        "--trainer.max_epochs", "1", "--data.init_args.repeats", "1",
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    assert main(args) == 0
    with open(out / "ablation.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["variant"], r["seed"]) for r in rows] == [
        ("none", "0"),
        ("none", "1"),
        ("scse", "0"),
        ("scse", "1"),
    ]
    assert all(0.0 <= float(r["best_dice"]) <= 1.0 for r in rows)
    # Different seeds give different runs.
    assert rows[0]["best_dice"] != rows[1]["best_dice"]
    table = (out / "ablation.md").read_text()
    assert "| none |" in table and "| scse |" in table and "±" in table
    assert (out / "ablation.png").stat().st_size > 5_000
    # Finished runs are read back, not trained again.
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/checkpoints/last.ckpt")}
    assert len(stamps) == 4
    assert main(args) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("*/checkpoints/last.ckpt")}
