"""The ``report`` command: the results tables (``against_nnunet.md``, ``.csv``) from the
rows of ``against_nnunet.jsonl``, with paired intervals and the no-learning baselines."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from nnunet.rows import mean_score, read_rows
from nnunet.settings import (
    DATASETS,
    FOLLOWED_BY,
    MARKS,
    MAX_COLUMNS,
    NOTES,
    PLANS,
    RESULTS,
    SLICES,
    TRAINER,
    WHY,
)


def _rowmean_score(row: dict, classes: list[str], key: str) -> float:
    """A row's mean ``key`` over ``classes``; a row recovered from the CSV has only the
    means of HD95 and NSD (``means``)."""
    return (
        row["means"][key]
        if key in row.get("means", {})
        else mean_score(row["scores"], classes, key)
    )


def paired(ours: list[dict], theirs: list[dict], classes: list[str], seed: int = 0) -> str:
    """Dice of ``ours`` minus ``theirs``, paired by repeat and class, with a 95 % bootstrap
    interval (repeats and classes resampled)."""
    by_repeat = {r["repeat"]: r["scores"] for r in theirs}
    pairs = [(r["scores"], by_repeat[r["repeat"]]) for r in ours if r["repeat"] in by_repeat]
    # the classes both score in every pair (a structure absent from every held-out case
    # has no Dice)
    classes = [c for c in classes if all("dice" in a.get(c, {}) and "dice" in b.get(c, {})
                                         for a, b in pairs)]  # fmt: skip
    diff = np.array([[a[c]["dice"] - b[c]["dice"] for c in classes] for a, b in pairs])
    if not diff.size:
        return "no paired repeats"
    rng = np.random.default_rng(seed)
    boot = [diff[np.ix_(rng.integers(0, len(diff), len(diff)),
                        rng.integers(0, diff.shape[1], diff.shape[1]))].mean()
            for _ in range(2000)]  # fmt: skip
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return (f"{diff.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] "
            f"({len(diff)} repeat(s) x {diff.shape[1]} classes)")  # fmt: skip


def _training_fit_table(rows: list, name: str, dims: int, columns: list, shown: dict) -> list:
    """The rows of ``training-fit`` for one dataset: the same models on their training
    cases, Dice per class (nothing if there are none)."""
    seen = [r for r in rows if r.get("scored_on") and (r["dataset"], r["dims"]) == (name, dims)]
    if not seen or not columns:
        return []
    lines = ["The same models on their own training cases (`training-fit`): did they fit what "
             "they saw?", "",
             "| pipeline | budget | repeat | steps | "
             + "".join(f"{shown.get(c, c)}: Dice (mean of cases) | " for c in columns)
             + "mean HD95 (mm) |", "|---|---|---|---|" + "---|" * (len(columns) + 1)]  # fmt: skip
    for r in sorted(seen, key=lambda r: r["budget"] != "no learning"):  # baseline first
        label = r["pipeline"] + (f" [{r['plan']}]" if r.get("plan") else "")
        learnt = r["budget"] != "no learning"
        dice = "".join(f"{r['scores'][c]['dice']:.3f} | " for c in columns)
        lines.append(f"| {label} | {r['budget']} | {r['repeat'] if learnt else ''} | "
                     f"{r['steps'] if learnt else ''} | {dice}"
                     f"{mean_score(r['scores'], columns, 'hd95'):.2f} |")  # fmt: skip
    return [*lines, ""]


def _budget_steps(row: dict) -> int | None:
    """What sets a row apart beside its pipeline and budget: its steps, where the budget is
    equal steps (a longer budget is another comparison); none for the others."""
    return row["steps"] if row["budget"] == "equal steps" else None


def _standard_steps(group: list[dict]) -> int | None:
    """The dataset's standard budget in steps: the fewest of its equal-steps rows."""
    return min((r["steps"] for r in group if r["budget"] == "equal steps"), default=None)


def _differences(runs: dict[tuple, list[dict]], standard: int | None, classes: list) -> list:
    """The paired Dice differences under a table: each scseg row against nnU-Net at the same
    steps, a variant against plain scseg, nnU-Net's equal-time run against scseg's steps."""
    lines = []
    for (pipeline, budget, steps), same in runs.items():
        if not pipeline.startswith("scseg") or budget == "no learning":
            continue
        # against nnU-Net at the same steps (equal wall time: at the standard budget)
        nnunet = runs.get(("nnU-Net", "equal steps", steps or standard), [])
        at = f"{same[0]['steps']} steps" if steps and steps != standard else budget
        lines.append(f"- {pipeline} ({at}) minus nnU-Net, Dice: "
                     f"{paired(same, nnunet, classes)}")  # fmt: skip
        # a variant against plain scseg of the same plan; an earlier plan against the one
        # that followed it
        base, _, plan = pipeline.partition(" [")
        if base != "scseg":
            versus = "scseg" + (f" [{plan}" if plan else "")
        else:
            later = FOLLOWED_BY.get(plan.removesuffix("]"))
            versus = f"scseg [{later}]" if later else "scseg"
        if budget == "equal steps" and pipeline != versus and (versus, budget, steps) in runs:
            lines.append(f"- {pipeline} ({at}) minus {versus}, Dice: "
                         f"{paired(same, runs[(versus, budget, steps)], classes)}")  # fmt: skip
    # nnU-Net given scseg's training time: against scseg's equal-steps run
    later = runs.get(("nnU-Net", "equal wall time", None))
    ours = runs.get(("scseg", "equal steps", standard))
    if later and ours:
        lines.append("- scseg (equal steps) minus nnU-Net (equal wall time: scseg's training "
                     f"time), Dice: {paired(ours, later, classes)}")  # fmt: skip
    return lines


def report(args: argparse.Namespace) -> None:
    every = read_rows()
    rows = [r for r in every if not r.get("scored_on")]  # the held-out cases
    lines = ["<!-- generated by benchmarks/against_nnunet.py; do not edit -->", ""]
    flat = []
    for name, dims in dict.fromkeys((r["dataset"], r.get("dims", 3)) for r in rows):
        group = [r for r in rows if r["dataset"] == name and r.get("dims", 3) == dims]
        classes = [c for c in group[0]["scores"] if c != "background"]
        shown = DATASETS[name].get("names", {})
        columns = classes if len(classes) <= MAX_COLUMNS else []  # else the mean only
        # patches per step: in 2D each side's planned batch of slices (in 3D both draw 2)
        batch = dims == 2
        title = DATASETS[name]["title"] + (f"; {SLICES}" if dims == 2 else "")
        lines += [f"**{title}**", "",
                  "| pipeline | budget | repeats | steps | "
                  + ("patches per step | " if batch else "")
                  + "training (s) | prediction (s) | "
                  + "".join(f"{shown.get(c, c)}: Dice | " for c in columns)
                  + f"mean Dice{f' ({len(classes)} structures)' if not columns else ''} | "
                  "mean HD95 (mm) | mean NSD (1 mm) |",
                  "|---|---|---|---|---|---|" + "---|" * (len(columns) + 3 + batch)]  # fmt: skip
        runs: dict[tuple, list[dict]] = {}
        for r in group:  # rows of an earlier scseg plan are labelled with it (PLANS)
            label = r["pipeline"] + (f" [{r['plan']}]" if r.get("plan") else "")
            runs.setdefault((label, r["budget"], _budget_steps(r)), []).append(r)
        for (pipeline, budget, _), same in runs.items():
            learnt = budget != "no learning"
            same = same if learnt else same[:1]
            means = [mean_score(r["scores"], classes, "dice") for r in same]
            spread = f" ± {np.std(means, ddof=1):.3f}" if len(same) > 1 else ""
            dice = "".join(
                f"{np.mean([r['scores'][c]['dice'] for r in same]):.3f} | " for c in columns
            )
            cells = [pipeline, budget, str(len(same)) if learnt else "",
                     "/".join(sorted({str(r["steps"]) for r in same})) if learnt else "",
                     *(["/".join(sorted({str(r["batch"]) for r in same if r.get("batch")}))
                        if learnt else ""]
                       if batch else []),
                     f"{np.mean([r['train_s'] for r in same]):.0f}"
                     + "".join(MARKS[n] for n in NOTES if any(r.get("note") == n for r in same))
                     if learnt else "",
                     f"{np.mean([r['predict_s'] for r in same]):.0f}" if learnt else "",
                     f"{dice}**{np.mean(means):.3f}**{spread}",
                     f"{np.mean([_rowmean_score(r, classes, 'hd95') for r in same]):.2f}",
                     f"{np.mean([_rowmean_score(r, classes, 'nsd') for r in same]):.3f}",
                     ]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
            for r in same:
                flat.append({"dataset": name, "dims": dims, "pipeline": pipeline,
                             "budget": budget, "batch": r.get("batch") or "",
                             "repeat": r["repeat"] if learnt else "", "steps": r["steps"],
                             "train_s": r["train_s"], "predict_s": r["predict_s"],
                             **{f"dice_{c}": r["scores"][c]["dice"] for c in classes},
                             "mean_dice": mean_score(r["scores"], classes, "dice"),
                             "mean_hd95": _rowmean_score(r, classes, "hd95"),
                             "mean_nsd": _rowmean_score(r, classes, "nsd")})  # fmt: skip
        lines.append("")
        lines += _differences(runs, _standard_steps(group), classes)
        lines.append("")
        lines += _training_fit_table(every, name, dims, columns, shown)
        if (name, dims) in WHY:
            lines += [f"{WHY[(name, dims)]}.", ""]
    for plan, what in PLANS.items():
        if any(r.get("plan") == plan for r in rows):
            lines.append(f"[{plan}]: {what}")
    for note, what in NOTES.items():
        if any(r.get("note") == note for r in rows):
            lines += ["", f"{MARKS[note]} {note}: {what}."]
    lines.append("")
    lines.append(f"nnU-Net: {rows[0]['nnunet']} through its own CLI (`{TRAINER}`: its default "
                 "trainer with the budget set); two CPU cores. scseg predicts with `--tta`, "
                 "nnU-Net with its default mirroring; both from the last checkpoint.")  # fmt: skip
    out = Path(args.out) if getattr(args, "out", None) else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    (out / "against_nnunet.md").write_text("\n".join(lines) + "\n")
    with open(out / "against_nnunet.csv", "w", newline="") as f:
        fields = list(dict.fromkeys(k for row in flat for k in row))
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(flat)
    print((out / "against_nnunet.md").read_text())
