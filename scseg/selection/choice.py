"""The choice after cross-validation: the table of candidates, the results files, and the
package of the chosen configuration (all its folds) or ensemble."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from scseg.selection.configurations import Configuration, SelectionError
from scseg.selection.crossval import Candidate, checkpoints


def choose(candidates: list[Candidate], override: str | None = None) -> Candidate:
    """The best mean cross-validation Dice (``candidates`` come best first), or the one
    named by ``override``.

    Raises:
        SelectionError: ``override`` names no candidate.
    """
    if override is None:
        return candidates[0]
    for candidate in candidates:
        if candidate.name == override:
            return candidate
    raise SelectionError(f"--choose {override}: not a candidate; the candidates are "
                         f"{', '.join(c.name for c in candidates)}")  # fmt: skip


def table(candidates: list[Candidate], chosen: Candidate, folds: int):
    """A rich table: each candidate's cross-validation Dice per class and mean, and by
    how many points it trails the best; the chosen one marked."""
    from rich.table import Table

    classes = list(candidates[0].dice)
    best = candidates[0].mean
    out = Table(title=f"cross-validation Dice ({folds} folds, every case held out once)")
    out.add_column("configuration")
    for name in classes:
        out.add_column(name, justify="right")
    out.add_column("mean", justify="right")
    out.add_column("behind best", justify="right")
    for c in candidates:
        behind = "best" if c is candidates[0] else f"{100 * (best - c.mean):.2f} pt"
        mark = " (chosen)" if c is chosen else ""
        out.add_row(f"{c.name}{mark}", *[f"{c.dice.get(n, float('nan')):.4f}" for n in classes],
                    f"{c.mean:.4f}", behind)  # fmt: skip
    return out


def write_results(out: Path, candidates: list[Candidate], chosen: Candidate, folds: int) -> Path:
    """``cross_validation.csv`` (a row per candidate and class) and
    ``cross_validation.json`` (the scores, the choice, the fold count) in ``out``."""
    from scseg.inference.writing import atomic_write

    rows = [{"configuration": c.name, "class": name, "dice": f"{dice:.6f}"}
            for c in candidates for name, dice in c.dice.items()]  # fmt: skip

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, ["configuration", "class", "dice"])
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(out / "cross_validation.csv", write_csv, overwrite=True)
    summary = {
        "folds": folds,
        "chosen": chosen.name,
        "best": candidates[0].name,
        "candidates": [
            {"name": c.name, "members": c.members, "mean_dice": c.mean, "dice": c.dice}
            for c in candidates
        ],
    }
    path = out / "cross_validation.json"
    atomic_write(path, lambda t: t.write_text(json.dumps(summary, indent=1) + "\n"), True)
    return path


def package_choice(
    out: Path,
    chosen: Candidate,
    best: Candidate,
    configurations: list[Configuration],
    folds: int,
    notes: str,
) -> Path:
    """``<out>/<chosen>.scseg``: the chosen configuration's folds, or each member's folds
    for an ensemble (:func:`scseg.inference.package.write_ensemble_package`); rewritten on
    each run, as the rest of the folder."""
    from scseg.inference.package import write_ensemble_package, write_package

    by_name = {c.name: c for c in configurations}
    path = out / f"{chosen.name.replace('+', '_')}.scseg"
    how = "the best" if chosen is best else f"chosen by the user over {best.name} ({best.mean:.4f})"
    description = (f"{chosen.name}, {how} by cross-validation over {folds} folds: mean Dice "
                   f"{chosen.mean:.4f}")  # fmt: skip
    if len(chosen.members) == 1:
        return write_package(checkpoints(out, by_name[chosen.name], folds), path, True,
                             description)  # fmt: skip
    members = {name: checkpoints(out, by_name[name], folds) for name in chosen.members}
    return write_ensemble_package(members, path, True, description, notes)


def markdown(candidates: list[Candidate], chosen: Candidate) -> str:
    """The table as Markdown, for the package's card."""
    classes = list(candidates[0].dice)
    lines = ["| configuration | " + " | ".join(classes) + " | mean |",
             "|---|" + "---:|" * (len(classes) + 1)]  # fmt: skip
    for c in candidates:
        mark = " (chosen)" if c is chosen else ""
        values = " | ".join(f"{c.dice.get(n, float('nan')):.4f}" for n in classes)
        lines.append(f"| {c.name}{mark} | {values} | {c.mean:.4f} |")
    return "\n".join(["## Cross-validation", "", *lines, ""])
