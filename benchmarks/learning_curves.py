"""Learning curves against nnU-Net: held-out Dice against training steps, scseg's planned
pipeline beside nnU-Net v2 through its own command line, each budget its own run (both
schedules depend on the horizon), the same cases and patches per step, the no-learning
baseline in every table and plot.

Every run is a row of the head-to-head (``benchmarks/against_nnunet.py run``, appended to
``against_nnunet.jsonl`` as it lands, so a session that ends mid-way loses nothing); this
script chooses which runs are still missing, runs them two at a time (each pinned to one
core), and draws the curves from the rows.

    uv run python benchmarks/learning_curves.py missing --curve tissue-3d
    uv run python benchmarks/learning_curves.py queue --curve tissue-3d --until 22:40
    uv run python benchmarks/learning_curves.py report

Results: ``benchmarks/results/learning_curves.{md,csv,png}``.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from nnunet.report import paired
from nnunet.rows import mean_score, read_rows
from nnunet.settings import DATASETS, MARKS, NOTES, RESULTS, RUNS, VARIANTS

HERE = Path(__file__).resolve().parent
LOGS = RUNS.parent / "learning_curves"
NOTE = "one core each"  # the rows of runs made two at a time

# per curve: the head-to-head's dataset and dims; scseg's rows (the plan as this machine
# runs it: bf16 autocast on a CPU with AMX, the variant that names it, so that rows from
# before the plan's default changed are not mixed in); the budgets in steps; the steps of
# one epoch (scseg's, which nnU-Net's trainer is given too). 3456 steps, twice the largest,
# once the others are in (about 1.5 h of nnU-Net a repeat on both cores)
CURVES = {
    "tissue-3d": {"dataset": "tissue", "dims": 3, "variant": "bf16",
                  "budgets": [432, 864, 1728], "per_epoch": 54},
    "tissue-2d": {"dataset": "tissue", "dims": 2, "variant": "bf16",
                  "budgets": [432, 1728, 6912], "per_epoch": 54,
                  # those that touch the slice-wise plan (an SMP encoder, batches of slices)
                  "candidates": ["warmup-clip", "nnunet-optimiser", "gpu-plan", "fp32"]},
    "nuclei-2d": {"dataset": "nuclei", "dims": 2, "variant": "bf16",
                  "budgets": [432, 1728, 6912], "per_epoch": 54,
                  "step_s": 0.2,  # a first guess (128 x 128 x 2 a step) until rows say
                  "candidates": ["warmup-clip", "nnunet-optimiser", "gpu-plan", "fp32"]},
    # one GPU (benchmarks/nnunet/gpu_curve.sh, rows with its note), the CPU's plan
    "tissue-3d-gpu": {"dataset": "tissue", "dims": 3, "variant": "cpu-plan",
                      "budgets": [1620], "per_epoch": 54, "note": "GPU, runs at once",
                      "candidates": []},
}  # fmt: skip
# issue 52's candidate causes (variants of the head-to-head, each one change to the plan),
# run against the curve's scseg rows at its largest budget and at its smallest (a curve's
# "candidates": those that touch its plan; else all)
CANDIDATES = ["he-affine", "warmup-clip", "nnunet-optimiser", "two-cases", "in-plane",
              "gpu-plan", "fp32", "bf16-ds-own"]  # fmt: skip
REPEATS, REPEATS_LARGEST = 2, 3  # at every budget; at the largest that has rows
GOAL = 0.005  # scseg's mean at most this far below nnU-Net's, at every budget
SPEED_ONE_CORE = 1.8  # a pinned run's time over the same run's on both cores (estimate)


def candidates_of(curve: dict) -> list[str]:
    return curve.get("candidates", CANDIDATES)


def scseg_label(curve: dict) -> str:
    return VARIANTS[curve["variant"]][0]


def curve_rows(curve: dict) -> dict[str, list[dict]]:
    """``{"scseg": rows, "nnU-Net": rows, "baseline": rows, <candidate>: rows}``: the
    held-out rows of the curve's runs at equal steps on CPUs (a GPU's rows are another
    device's curve)."""
    every = [r for r in read_rows() if not r.get("scored_on")
             and (r["dataset"], r.get("dims", 3)) == (curve["dataset"], curve["dims"])
             and not r.get("plan")]  # fmt: skip
    device = curve.get("note")  # a GPU curve's rows carry its note; a CPU curve's no GPU's
    rows = [r for r in every if (r.get("note") == device if device
                                 else "GPU" not in (r.get("note") or ""))]  # fmt: skip
    return {
        "scseg": [r for r in rows if r["pipeline"] == scseg_label(curve)
                  and r["budget"] == "equal steps"],
        "nnU-Net": [r for r in rows if r["pipeline"] == "nnU-Net"
                    and r["budget"] == "equal steps"],
        "baseline": [r for r in every if r["budget"] == "no learning"][:1],
        **{key: [r for r in rows if r["pipeline"] == VARIANTS[key][0]
                 and r["budget"] == "equal steps"] for key in candidates_of(curve)},
    }  # fmt: skip


def wanted(
    curve: dict, candidates: bool = False, running: bool = True
) -> list[tuple[str, int, int]]:
    """``(pipeline, steps, repeat)`` still missing, the order they are worth running in:
    first repeats first, the largest budget first within a repeat (where the plateau is),
    nnU-Net before scseg at the same budget (the longer run starts first); then, with
    ``candidates``, each candidate's (a variant's key as the pipeline) at the largest
    budget, then the smallest, first repeats first. Without ``running``, none that a live
    queue is running (:func:`_claimed`)."""

    def left(task: tuple) -> bool:
        return not running or not _claimed(curve, task)

    have = curve_rows(curve)
    out = []
    if candidates:
        out = wanted(curve, running=running)
        for repeat in range(REPEATS):
            for steps in (max(curve["budgets"]), min(curve["budgets"])):
                for key in candidates_of(curve):
                    done = {r["repeat"] for r in have[key] if r["steps"] == steps}
                    if repeat not in done and left((key, steps, repeat)):
                        out.append((key, steps, repeat))
        return out
    for repeat in range(REPEATS_LARGEST):
        for steps in sorted(curve["budgets"], reverse=True):
            needed = REPEATS_LARGEST if steps == max(curve["budgets"]) else REPEATS
            if repeat >= needed:
                continue
            for pipeline in ("nnU-Net", "scseg"):
                done = {r["repeat"] for r in have[pipeline] if r["steps"] == steps}
                if repeat not in done and left((pipeline, steps, repeat)):
                    out.append((pipeline, steps, repeat))
    return out


def _claim_file(curve: dict, task: tuple) -> Path:
    pipeline, steps, repeat = task
    return LOGS / f"{curve['dataset']}_{curve['dims']}d_{pipeline}_{steps}_r{repeat}.claim"


def _claimed(curve: dict, task: tuple) -> bool:
    """Whether a queue (this one or another) is running ``task``: its claim names a live
    process."""
    return _live(_claim_file(curve, task)) is not None


def _live(claim: Path) -> int | None:
    """The core of a claim (``"pid core"``) whose process is alive; else ``None``."""
    try:
        pid, core = (int(v) for v in claim.read_text().split())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return core


def _busy_cores() -> set[int]:
    """The cores that a live run of any queue holds (so that a queue started later, for a
    later --until, never doubles a core)."""
    return {core for claim in LOGS.glob("*.claim") if (core := _live(claim)) is not None}


def seconds_per_step(curve: dict, pipeline: str) -> float:
    """A step's training time on both cores, from the rows (the median over them)."""
    rows = [r for r in curve_rows(curve)[pipeline] if r.get("note") is None and r["steps"]]
    if rows:
        return float(np.median([r["train_s"] / r["steps"] for r in rows]))
    if pipeline not in ("scseg", "nnU-Net"):  # a candidate not run yet: as the plan
        return seconds_per_step(curve, "scseg") * (3 if pipeline == "gpu-plan" else 1)
    return curve.get("step_s", 2.0)  # nothing measured yet: the curve's guess


def command(curve: dict, pipeline: str, steps: int, repeat: int) -> list[str]:
    epochs, rest = divmod(steps, curve["per_epoch"])
    assert not rest, f"{steps} steps is not whole epochs of {curve['per_epoch']}"
    if pipeline == "nnU-Net":
        which = ["--nnunet-only", "--no-equal-time"]
    else:  # the curve's own plan, or a candidate's variant
        which = ["--variant", curve["variant"] if pipeline == "scseg" else pipeline]
    return [sys.executable, str(HERE / "against_nnunet.py"), "run", "--dataset",
            curve["dataset"], "--dims", str(curve["dims"]), "--epochs", str(epochs),
            "--repeat", str(repeat), "--note", NOTE, *which]  # fmt: skip


def queue(args: argparse.Namespace) -> None:
    """Runs what is missing, one run per core at a time, each pinned there with ``taskset``;
    a run starts only if its estimated time (the rows' step time, slowed for one core) ends
    before ``--until``."""
    curve = CURVES[args.curve]
    if curve.get("note"):
        raise SystemExit(f"{args.curve}: a GPU's curve; run benchmarks/nnunet/gpu_curve.sh there")
    until = _deadline(args.until, datetime.now()) if args.until else None
    LOGS.mkdir(parents=True, exist_ok=True)
    running: dict[int, tuple[subprocess.Popen, tuple]] = {}
    started, failed = 0, set()
    while True:
        for core, (proc, task) in list(running.items()):
            if proc.poll() is not None:
                print(f"{datetime.now():%H:%M} core {core}: {task} exited {proc.returncode}",
                      flush=True)  # fmt: skip
                _claim_file(curve, task).unlink(missing_ok=True)
                if proc.returncode:
                    failed.add(task)  # not again in this queue: its log says why
                del running[core]
        for core in [c for c in args.cores if c not in running and c not in _busy_cores()]:
            if args.limit is not None and started >= args.limit:
                break
            now = datetime.now()
            todo = wanted(curve, args.candidates)  # the rows and claims as they are now
            speed = {p: seconds_per_step(curve, p) for p in {t[0] for t in todo}}  # one read
            fits = [t for t in todo if t not in failed and _ends_by(t, speed[t[0]], now, until)]
            if not fits:
                continue
            task = fits[0]
            log = LOGS / f"{args.curve}_{task[0]}_{task[1]}_r{task[2]}.log"
            cmd = ["taskset", "-c", str(core), *command(curve, *task)]
            with open(log, "w") as out:  # the child keeps its own descriptor
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
            running[core] = (proc, task)
            _claim_file(curve, task).write_text(f"{proc.pid} {core}")
            started += 1
            print(f"{now:%H:%M} core {core}: {task} ({log.name})", flush=True)
            time.sleep(60)  # the two runs' data preparation does not overlap
        if not running and not _busy_cores():
            break  # nothing left, or nothing left fits before --until
        time.sleep(20)
    print(f"missing: {wanted(curve, args.candidates)}")


def _deadline(hh_mm: str, start: datetime) -> datetime:
    """The first ``hh_mm`` after ``start``: a queue started at 23:30 ``--until 02:00`` runs
    until two the next morning, not never."""
    at = datetime.combine(start.date(), datetime.strptime(hh_mm, "%H:%M").time())
    return at if at > start else at + timedelta(days=1)


def _ends_by(task: tuple, step_s: float, now: datetime, until: datetime | None) -> bool:
    """Whether ``task`` on one core, started ``now``, is estimated to end before ``until``
    (``step_s``, its step time on both cores, slowed for one, and two minutes to predict)."""
    if until is None:
        return True
    seconds = task[1] * step_s * SPEED_ONE_CORE + 120
    return now.timestamp() + seconds <= until.timestamp()


def missing(args: argparse.Namespace) -> None:
    curve = CURVES[args.curve]
    for task in wanted(curve, args.candidates):
        est = task[1] * seconds_per_step(curve, task[0])
        print(f"{task}: about {est / 60:.0f} min on both cores")


def _mean(rows: list[dict], classes: list[str]) -> list[float]:
    return [mean_score(r["scores"], classes, "dice") for r in rows]


def summary(curve: dict) -> tuple[list[dict], list[str], float | None]:
    """One entry per budget with rows: each pipeline's repeats' means, the paired
    difference; the classes; the baseline's mean."""
    have = curve_rows(curve)
    first = next(iter(have["scseg"] + have["nnU-Net"]), None)
    if first is None:
        return [], [], None
    classes = [c for c in first["scores"] if c != "background"]
    base = _mean(have["baseline"], classes)[0] if have["baseline"] else None
    out = []
    for steps in sorted({r["steps"] for r in have["scseg"] + have["nnU-Net"]}):
        ours = [r for r in have["scseg"] if r["steps"] == steps]
        theirs = [r for r in have["nnU-Net"] if r["steps"] == steps]
        out.append(
            {
                "steps": steps,
                "scseg": _mean(ours, classes),
                "scseg_repeats": [r["repeat"] for r in ours],
                "nnunet": _mean(theirs, classes),
                "nnunet_repeats": [r["repeat"] for r in theirs],
                "paired": paired(ours, theirs, classes) if ours and theirs else "",
                "notes": sorted({r["note"] for r in ours + theirs if r.get("note")}),
            }
        )
    return out, classes, base


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    spread = f" ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else ""
    each = ", ".join(f"{v:.3f}" for v in values)
    return f"**{np.mean(values):.3f}**{spread} ({len(values)}: {each})"


def _verdict(entry: dict, previous: dict | None) -> str:
    """The goal at one budget: scseg within 0.5 points of nnU-Net (its paired interval's
    upper end at least -0.005), and no fall from the budget below beyond the repeat spread."""
    notes = []
    if entry["scseg"] and entry["nnunet"] and entry["paired"].startswith(("+", "-")):
        hi = float(entry["paired"].split("[")[1].split(",")[1].split("]")[0])
        notes.append("within 0.5 pt" if hi >= -GOAL else "behind")
    if previous and previous["scseg"] and entry["scseg"]:
        fall = np.mean(previous["scseg"]) - np.mean(entry["scseg"])
        spread = max(np.std(previous["scseg"] + entry["scseg"], ddof=1), 1e-9)
        if fall > spread:
            notes.append(f"falls {100 * fall:.1f} pt")
    return "; ".join(notes) or "-"


def _candidates(curve: dict, classes: list[str]) -> list[str]:
    """The candidate causes' table: each against the curve's scseg rows of the same steps,
    paired by repeat."""
    have = curve_rows(curve)
    lines = ["Candidate causes, one change each to the plan above, against it at the same "
             "steps (paired by repeat):", "",
             "| candidate | steps | mean Dice (repeats) | minus the plan, paired [95 %] |",
             "|---|---|---|---|"]  # fmt: skip
    for key in candidates_of(curve):
        for steps in (max(curve["budgets"]), min(curve["budgets"])):
            rows = [r for r in have[key] if r["steps"] == steps]
            ours = [r for r in have["scseg"] if r["steps"] == steps]
            diff = paired(rows, ours, classes) if rows and ours else "-"
            lines.append(f"| {VARIANTS[key][0].removeprefix('scseg, ')} (`{key}`) | {steps} | "
                         f"{_cell(_mean(rows, classes))} | {diff} |")  # fmt: skip
    return [*lines, ""]


def report(args: argparse.Namespace) -> None:
    out = Path(args.out) if args.out else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    lines = ["<!-- generated by benchmarks/learning_curves.py; do not edit -->", ""]
    flat, panels, used, scored = [], [], set(), ""
    for name, curve in CURVES.items():
        entries, classes, base = summary(curve)
        names = DATASETS[curve["dataset"]].get("names", {})
        scored = scored or ", ".join(names.get(c, c) for c in classes)
        lines += [f"**{name}**: {DATASETS[curve['dataset']]['title']}; scseg: "
                  f"`{scseg_label(curve)}` "
                  + (f"({curve['note']})" if curve.get("note") else
                     "(the plan as this machine runs it)")
                  + ", nnU-Net's "
                  f"{'3d_fullres' if curve['dims'] == 3 else '2d'}", "",
                  "| steps | scseg mean Dice (repeats) | nnU-Net mean Dice (repeats) | "
                  "scseg minus nnU-Net, paired [95 %] | no learning | goal |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        previous = None
        for e in entries:
            mark = "".join(MARKS[n] for n in e["notes"])
            used.update(e["notes"])
            cells = [f"{e['steps']}{mark}", _cell(e["scseg"]), _cell(e["nnunet"]),
                     e["paired"] or "-", f"{base:.3f}", _verdict(e, previous)]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
            previous = e
            for who, key in (("scseg", "scseg"), ("nnU-Net", "nnunet")):
                for repeat, value in zip(e[f"{key}_repeats"], e[key], strict=True):
                    flat.append({"curve": name, "pipeline": who, "steps": e["steps"],
                                 "repeat": repeat, "mean_dice": round(value, 4)})  # fmt: skip
        todo = wanted(curve, running=False)
        lines += [
            "",
            f"Runs of the curve still to make ({len(todo)}): "
            + (", ".join(f"{p} {s} steps repeat {r}" for p, s, r in todo) or "none"),
            "",
        ]
        lines += _candidates(curve, classes) if candidates_of(curve) else []
        if entries:
            panels.append((name, entries, base))
    _plot(panels, out / "learning_curves.png")
    lines += [f"{MARKS[n]} {n}: {NOTES[n]}." for n in sorted(used)] + [""]
    lines += [
              f"Mean Dice over {scored}; the paired "
              "difference resamples repeats and classes (`benchmarks/nnunet/report.py`). "
              "Goal: scseg at most 0.5 points below nnU-Net (the interval's upper end), "
              "and never falling by more than its repeat spread from one budget to the "
              "next."]  # fmt: skip
    (out / "learning_curves.md").write_text("\n".join(lines) + "\n")
    with open(out / "learning_curves.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["curve", "pipeline", "steps", "repeat", "mean_dice"])
        writer.writeheader()
        writer.writerows(flat)
    print((out / "learning_curves.md").read_text())


def _plot(curves: list[tuple[str, list[dict], float | None]], out: Path) -> None:
    """One panel per curve ``(name, entries, baseline)``: every repeat, the means joined,
    the no-learning baseline dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4), squeeze=False)
    for ax, (name, entries, base) in zip(axes[0], curves, strict=True):
        for key, label, colour in (("scseg", "scseg", "C0"), ("nnunet", "nnU-Net", "C1")):
            pts = [(e["steps"], v) for e in entries for v in e[key]]
            means = [(e["steps"], np.mean(e[key])) for e in entries if e[key]]
            if pts:
                ax.scatter(*zip(*pts, strict=True), color=colour, alpha=0.5, s=18)
                ax.plot(*zip(*means, strict=True), color=colour, marker="o", label=label)
        if base is not None:
            ax.axhline(base, color="grey", linestyle="--", label="no learning (Otsu)")
        ax.set_xscale("log", base=2)
        ax.set_xticks([e["steps"] for e in entries], [str(e["steps"]) for e in entries])
        ax.set_xlabel("training steps")
        ax.set_ylabel("held-out mean Dice")
        ax.set_title(name)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for cmd, fn in (("missing", missing), ("queue", queue)):
        p = sub.add_parser(cmd)
        p.add_argument("--curve", choices=CURVES, default="tissue-3d")
        p.set_defaults(fn=fn)
        if cmd == "queue":
            p.add_argument("--until", help="HH:MM: start no run that would end later")
            p.add_argument("--cores", type=int, nargs="+", default=[0, 1])
            p.add_argument("--limit", type=int, help="at most this many runs")
        p.add_argument("--candidates", action="store_true", help="the candidate causes' runs "
                       "too, after the curve's")  # fmt: skip
    tables = sub.add_parser("report")
    tables.add_argument("--out", help="write the results here instead of benchmarks/results/")
    tables.set_defaults(fn=report)
    args = parser.parse_args()
    os.chdir(HERE.parent)
    args.fn(args)


if __name__ == "__main__":
    main()
