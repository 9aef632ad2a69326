"""Fine-tuning against training from scratch, at equal steps: the 3-class brain tissue
model (``configs/quickstart_3d.yaml``) as the start for two other tasks with other classes:

* ``parcellation``: 136 brain structures (``configs/brain_parcellation_3d.yaml``), scored on
  the config's MNI-space validation template (one volume: the native-space subjects take
  five minutes per validation on two CPU cores, more than the training here);
* ``tumour``: the MR tumour sample (other contrast, other scanner, 2 classes), trained on
  brain1 and breast1, scored on brain2.

    uv run python benchmarks/finetune.py run --seeds 3
    uv run python benchmarks/finetune.py report

``run`` trains the start model first if ``--start`` is not given, then every task x
{scratch, init_from} x seed into ``runs/finetune/<task>/<arm>_seed<k>`` (a finished run is
read, not redone). Both arms share the config, seed and number of steps; the fine-tuned arm
adds ``--model.init_from START``. ``report`` writes ``benchmarks/results/finetune.{md,csv,png}``:
validation mean Dice per epoch (the curves), the last value with its paired difference,
the wall time of each run, and the baseline that needs no learning beside each task
(copying the training atlas onto the validation template for the parcellation, from
``parcellation_baselines.json``; the majority class,
background everywhere, for the tumour, which scores foreground Dice 0).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
RUNS = REPO / "runs" / "finetune"
QUICKSTART_3D = str(REPO / "configs" / "quickstart_3d.yaml")
PARCELLATION_3D = str(REPO / "configs" / "brain_parcellation_3d.yaml")

TASKS: dict[str, tuple[str, list[str]]] = {
    "parcellation": (
        PARCELLATION_3D,
        [
            "--trainer.max_epochs",
            "20",
            "--trainer.check_val_every_n_epoch",
            "5",
        ],
    ),
    "tumour": (
        QUICKSTART_3D,
        [
            "--data.init_args.sample",
            "tumour3d",
            "--data.init_args.classes",
            "2",
            "--model.classes",
            "2",
            "--data.init_args.spacing",
            "[1.6, 1.6, 3.25]",
            "--data.init_args.patch_size",
            "[64, 64, 32]",
            "--data.init_args.repeats",
            "4",
            "--trainer.max_epochs",
            "30",
            "--trainer.check_val_every_n_epoch",
            "5",
        ],
    ),
}
ARMS = ("scratch", "init_from")


def scseg(*args: str) -> list[str]:
    return [sys.executable, "-m", "scseg.cli", *args]


def train_start(out: Path) -> Path:
    """The brain tissue quickstart, trained once; its best checkpoint."""
    done = sorted((out / "checkpoints").glob("best-*.ckpt"))
    if not done:
        subprocess.run(
            scseg(
                "fit",
                "--config",
                QUICKSTART_3D,
                "--trainer.default_root_dir",
                str(out),
                "--trainer.enable_progress_bar",
                "false",
            ),
            check=True,
        )
        done = sorted((out / "checkpoints").glob("best-*.ckpt"))
    return done[-1]


def run_one(task: str, arm: str, seed: int, start: Path) -> dict:
    out = RUNS / task / f"{arm}_seed{seed}"
    record = out / "run.json"
    if record.exists():
        return json.loads(record.read_text())
    config, extra = TASKS[task]
    args = [
        "fit",
        "--config",
        config,
        *extra,
        "--seed_everything",
        str(seed),
        "--trainer.default_root_dir",
        str(out),
        "--trainer.enable_progress_bar",
        "false",
    ]
    if arm == "init_from":
        args += ["--model.init_from", str(start)]
    begin = time.perf_counter()
    subprocess.run(scseg(*args), check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    seconds = time.perf_counter() - begin
    curve = read_curve(out)
    result = {
        "task": task,
        "arm": arm,
        "seed": seed,
        "seconds": seconds,
        "curve": curve,
        "start": str(start),
    }
    record.write_text(json.dumps(result, indent=2) + "\n")
    return result


def read_curve(out: Path) -> list[dict]:
    """``(epoch, step, val/dice_mean)`` of every validation of a run, from its CSV log."""
    rows = list(csv.DictReader((out / "logs" / "version_0" / "metrics.csv").open()))
    return [
        {"epoch": int(r["epoch"]), "step": int(r["step"]), "dice": float(r["val/dice_mean"])}
        for r in rows
        if r.get("val/dice_mean")
    ]


def baselines() -> dict[str, tuple[str, float]]:
    rows = json.loads((RESULTS / "parcellation_baselines.json").read_text())["rows"]
    mni = [r["dice"] for r in rows if (r["method"], r["case"]) == ("atlas copy", "icbm2009c_asym")]
    return {
        "parcellation": ("atlas copy onto the same template", mni[0]),
        "tumour": ("majority class (background everywhere)", 0.0),
    }


def report(results: list[dict]) -> None:
    import numpy as np

    RESULTS.mkdir(exist_ok=True)
    lines = ["<!-- generated by benchmarks/finetune.py; do not edit -->", ""]
    rows = []
    base = baselines()
    for task in TASKS:
        runs = {
            arm: sorted(
                (r for r in results if r["task"] == task and r["arm"] == arm),
                key=lambda r: r["seed"],
            )
            for arm in ARMS
        }
        if not all(runs.values()):
            continue
        seeds = sorted(
            {r["seed"] for r in runs["scratch"]} & {r["seed"] for r in runs["init_from"]}
        )
        last = {
            arm: [next(r for r in runs[arm] if r["seed"] == s)["curve"][-1]["dice"] for s in seeds]
            for arm in ARMS
        }
        diff = np.array(last["init_from"]) - np.array(last["scratch"])
        steps = runs["scratch"][0]["curve"][-1]["step"]
        lines += [
            f"### {task}: {len(seeds)} seed(s), {steps} steps each",
            "",
            "| run | mean Dice at each validation (epoch: Dice, mean over seeds) "
            "| last: mean ± sd | minutes |",
            "|---|---|---|---|",
        ]
        name, value = base[task]
        lines.append(f"| baseline: {name} | | {value:.3f} | 0 |")
        for arm in ARMS:
            epochs = [c["epoch"] for c in runs[arm][0]["curve"]]
            means = [
                statistics.mean(r["curve"][i]["dice"] for r in runs[arm])
                for i in range(len(epochs))
            ]
            curve = ", ".join(f"{e + 1}: {m:.3f}" for e, m in zip(epochs, means, strict=True))
            sd = statistics.stdev(last[arm]) if len(seeds) > 1 else 0.0
            minutes = statistics.mean(r["seconds"] for r in runs[arm]) / 60
            lines.append(
                f"| {arm} | {curve} | {statistics.mean(last[arm]):.3f} ± {sd:.3f} | {minutes:.1f} |"
            )
            for r in runs[arm]:
                for c in r["curve"]:
                    rows.append({"task": task, "arm": arm, "seed": r["seed"], **c})
        lines += [
            "",
            f"init_from - scratch, last validation, per seed: "
            f"{', '.join(f'{d:+.3f}' for d in diff)} (mean {diff.mean():+.3f})",
            "",
        ]
    start = results[0]["start"] if results else ""
    lines += [
        f"start model: `{Path(start).name}` (configs/quickstart_3d.yaml, brain tissue, 3 classes)",
        "",
    ]
    (RESULTS / "finetune.md").write_text("\n".join(lines))
    with (RESULTS / "finetune.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["task", "arm", "seed", "epoch", "step", "dice"])
        writer.writeheader()
        writer.writerows(rows)
    _plot(rows)
    print((RESULTS / "finetune.md").read_text())


def _plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TASKS), figsize=(5 * len(TASKS), 3.6))
    for ax, task in zip(axes, TASKS, strict=True):
        for arm, colour in zip(ARMS, ("#888888", "#3b7dd8"), strict=True):
            seeds = sorted({r["seed"] for r in rows if r["task"] == task and r["arm"] == arm})
            for s in seeds:
                pts = [r for r in rows if (r["task"], r["arm"], r["seed"]) == (task, arm, s)]
                ax.plot(
                    [p["step"] for p in pts],
                    [p["dice"] for p in pts],
                    "o-",
                    color=colour,
                    label=arm if s == seeds[0] else None,
                    alpha=0.8,
                )
        ax.set(title=task, xlabel="training steps", ylabel="validation mean Dice")
        ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "finetune.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("run", "report"))
    parser.add_argument(
        "--start", type=Path, help="start checkpoint or package (default: train it)"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", nargs="+", choices=tuple(TASKS), default=list(TASKS))
    args = parser.parse_args()
    if args.action == "run":
        start = args.start or train_start(RUNS / "start_brain_tissue")
        for task in args.tasks:
            for seed in range(args.seeds):
                for arm in ARMS:
                    run_one(task, arm, seed, start)
    results = [json.loads(p.read_text()) for p in sorted(RUNS.glob("*/*/run.json"))]
    report(results)


if __name__ == "__main__":
    main()
