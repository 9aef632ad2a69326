"""What ``scseg evaluate`` writes and prints: the CSV of every row, and the table of the
mean scores per class."""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from scseg.evaluation.scores import COLUMNS, METRICS


def write_csv(rows: Sequence[dict], path: Path, overwrite: bool = False) -> Path:
    """The rows as CSV, written atomically (the file appears complete or not at all)."""
    from scseg.inference.writing import atomic_write

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _fmt(row[k]) for k in COLUMNS})

    return atomic_write(path, write, overwrite)


def _fmt(value):
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def summarise(rows: Sequence[dict]) -> list[dict]:
    """Per class: cases scored, mean and median of each metric, and the worst case (lowest
    Dice). NaN scores (structure absent from truth and prediction) are left out."""
    by_class: dict[int, list[dict]] = {}
    for row in rows:
        by_class.setdefault(row["class"], []).append(row)
    summary = []
    for c, class_rows in by_class.items():
        scored = [r for r in class_rows if not math.isnan(r["dice"])]
        entry = {"class": c, "name": class_rows[0]["name"], "cases": len(scored)}
        for metric in METRICS:
            values = [r[metric] for r in scored]
            entry[metric] = statistics.fmean(values) if values else math.nan
            entry[f"{metric}_median"] = statistics.median(values) if values else math.nan
        worst = min(scored, key=lambda r: r["dice"], default=None)
        entry["worst"] = (worst["case"], worst["dice"]) if worst else None
        summary.append(entry)
    return summary


def summary_table(summary: Sequence[dict], unit: str, tolerance: float, rows: int = 24):
    """A rich table: per class the cases scored, mean and median Dice, mean IoU, HD95, MSD
    and NSD, and the worst case; with more than ``rows`` classes, the ten with the lowest
    mean Dice. The last row is the mean over classes."""
    from rich.table import Table

    scored = [s for s in summary if s["cases"]]
    shown = scored if len(scored) <= rows else sorted(scored, key=lambda s: s["dice"])[:10]
    what = "per class" if shown is scored else f"of the 10 lowest of {len(scored)} classes"
    table = Table(title=f"mean scores {what} (HD95, MSD in {unit}; NSD at {tolerance:g} {unit})")
    for name in ("class", "n", "Dice", "median", "IoU", "HD95", "MSD", "NSD", "worst (Dice)"):
        left = name in ("class", "worst (Dice)")
        table.add_column(name, justify="left" if left else "right", no_wrap=True)

    def number(value: float, digits: int = 4) -> str:
        return "" if math.isnan(value) else f"{value:.{digits}f}"

    for s in shown:
        worst = f"{s['worst'][0]} ({s['worst'][1]:.3f})" if s["worst"] else ""
        table.add_row(s["name"], str(s["cases"]), number(s["dice"]), number(s["dice_median"]),
                      number(s["iou"]), number(s["hd95"], 2), number(s["msd"], 2),
                      number(s["nsd"]), worst)  # fmt: skip
    if scored:

        def mean(metric: str) -> float:
            return statistics.fmean(s[metric] for s in scored)

        table.add_row("mean", "", number(mean("dice")), "", number(mean("iou")),
                      number(mean("hd95"), 2), number(mean("msd"), 2), number(mean("nsd")), "",
                      style="bold")  # fmt: skip
    return table
