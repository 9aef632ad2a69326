"""The learning curves' queue follows the head-to-head's rows: what is missing, in the order
worth running, a GPU's rows apart (its tables are regenerated in
``test_against_nnunet_report``)."""

from __future__ import annotations

import sys
from datetime import datetime

from .conftest import REPO


def test_missing_runs_follow_the_rows(monkeypatch) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    import learning_curves as lc

    curve = {"dataset": "tissue", "dims": 3, "variant": "bf16", "budgets": [432, 1728],
             "per_epoch": 54}  # fmt: skip
    label = lc.scseg_label(curve)
    row = {"dataset": "tissue", "dims": 3, "budget": "equal steps", "scores": {}}
    rows = [{**row, "pipeline": label, "steps": 432, "repeat": r} for r in (0, 1)]
    rows += [{**row, "pipeline": "nnU-Net", "steps": 432, "repeat": 0},
             {**row, "pipeline": label, "steps": 1728, "repeat": 0}]  # fmt: skip
    monkeypatch.setattr(lc, "read_rows", lambda: rows)
    monkeypatch.setattr(lc, "_claimed", lambda curve, task: task == ("nnU-Net", 1728, 1))
    assert lc.wanted(curve) == [
        ("nnU-Net", 1728, 0),  # the largest budget first, the longer run first
        ("scseg", 1728, 1),  # ("nnU-Net", 1728, 1) is running in a queue
        ("nnU-Net", 432, 1),
        ("nnU-Net", 1728, 2),
        ("scseg", 1728, 2),
    ]
    assert ("nnU-Net", 1728, 1) in lc.wanted(curve, running=False)
    # candidates after the curve, at the largest budget, then the smallest
    extra = lc.wanted(curve, candidates=True)[5:]
    assert extra[: len(lc.CANDIDATES)] == [(k, 1728, 0) for k in lc.CANDIDATES]
    assert extra[len(lc.CANDIDATES)] == (lc.CANDIDATES[0], 432, 0)
    assert lc.command(curve, "two-cases", 432, 1)[-2:] == ["--variant", "two-cases"]
    assert "--nnunet-only" in lc.command(curve, "nnU-Net", 1728, 0)


def test_a_gpus_rows_make_their_own_curve(monkeypatch) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    import learning_curves as lc

    row = {"dataset": "tissue", "dims": 3, "budget": "equal steps", "scores": {},
           "steps": 1620, "repeat": 0}  # fmt: skip
    rows = [{**row, "pipeline": "nnU-Net", "note": "GPU, runs at once"},
            {**row, "pipeline": "nnU-Net", "note": "one core each"},
            {**row, "pipeline": "nnU-Net", "note": "one H200 GPU"}]  # fmt: skip
    monkeypatch.setattr(lc, "read_rows", lambda: rows)
    cpu, gpu = lc.curve_rows(lc.CURVES["tissue-3d"]), lc.curve_rows(lc.CURVES["tissue-3d-gpu"])
    assert [r["note"] for r in cpu["nnU-Net"]] == ["one core each"]
    assert [r["note"] for r in gpu["nnU-Net"]] == ["GPU, runs at once"]


def test_until_past_midnight_is_the_next_morning() -> None:
    """``--until 02:00`` given at 23:30 leaves two and a half hours, not none."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import learning_curves

    start = datetime(2026, 12, 7, 23, 30)
    until = learning_curves._deadline("02:00", start)
    assert until == datetime(2026, 12, 8, 2, 0)
    assert learning_curves._deadline("23:45", start) == datetime(2026, 12, 7, 23, 45)
    task = ("scseg", 432, 0)  # 432 x 1 s x 1.8 + 2 min: about 15 min on one core
    assert learning_curves._ends_by(task, 1.0, start, until)
    assert not learning_curves._ends_by(("scseg", 1728 * 3, 0), 1.0, start, until)
