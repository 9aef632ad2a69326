"""The end-of-run table: whole for a few classes; best, worst and smallest for many."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from rich.console import Console

from scseg.training.callbacks import MetricsReport


def _render(classes: int, hparams: dict | None = None) -> str:
    rows = [{"class": f"c{i}", "index": i, "dice": i / classes, "iou": i / classes,
             "global_dice": 0.0, "voxels": 1000 - i} for i in range(1, classes)]  # fmt: skip
    if classes > 5:
        rows[4]["dice"] = float("nan")  # a class no validation case has
    trainer = SimpleNamespace(current_epoch=3, callback_metrics={
        "val/dice_mean": torch.tensor(0.5), "val/iou_mean": torch.tensor(0.25)})  # fmt: skip
    module = SimpleNamespace(class_tables={"val": rows}, hparams=hparams or {})
    console = Console(width=120, record=True)
    console.print(MetricsReport().table(trainer, "val", module))
    return console.export_text()


def test_many_classes_print_best_worst_and_smallest() -> None:
    text = _render(137)
    assert "136 classes (135 scored)" in text
    for label in ("best 5", "worst 5", "smallest 5 (by voxels)"):
        assert label in text
    names = [line.split("│")[1].strip() for line in text.splitlines() if line.count("│") > 3]
    assert names[names.index("best 5") + 1 : names.index("best 5") + 6] == [
        "c136", "c135", "c134", "c133", "c132"]  # fmt: skip
    assert names[names.index("worst 5") + 1] == "c1"
    assert names[names.index("smallest 5 (by voxels)") + 1] == "c136"
    assert "c5" not in names  # NaN: not ranked
    assert len(names) < 25


def test_few_classes_print_every_class() -> None:
    text = _render(4)
    assert all(f"c{i}" in text for i in range(1, 4)) and "best 5" not in text


def test_the_table_says_when_it_scores_annotated_voxels_or_regions() -> None:
    assert "annotated" not in _render(4)
    text = " ".join(_render(4, {"ignore_index": 3}).split())  # the caption wraps
    assert "scored on annotated voxels only (label 3: not annotated)" in text
    text = " ".join(_render(4, {"multilabel": True}).split())
    assert "regions that may overlap, each scored on its own" in text
