"""Whole-brain parcellation (136 Neuromorphometrics structures, the sample
``brain_parcellation3d``): the attention ablation in 2D and 3D, and peer networks at equal
budget, all in the same training loop (``scseg fit``) on the same data.

    uv run python benchmarks/parcellation.py run --group ablation_3d --seeds 3 --jobs 6
    uv run python benchmarks/parcellation.py report

The groups ``ablation_native_2d`` (the 2D config, 10 epochs, nnU-Net's intensity set and the
turn on a larger crop), ``native_2d_augmentation`` (its scSE run without those two),
``native_2d_oblique`` (with half its training slices cut obliquely) and ``ablation_prior``
(register then refine, ``configs/brain_parcellation_3d_prior.yaml``) validate on the
native-space subjects (``scseg data brain_parcellation3d --native 8``), and their tables
carry the no-learning baselines of ``parcellation_baselines.py``:

    uv run python benchmarks/parcellation.py run --group ablation_native_2d \
        native_2d_oblique native_2d_augmentation --seeds 3 --jobs 2 --threads 1 \
        --output runs/parcellation_native
    uv run python benchmarks/parcellation.py report --prefix parcellation_native \
        --output runs/parcellation_native

``run`` trains every run of the chosen groups (several at once with ``--jobs``; a finished
run is read, not redone) into ``runs/parcellation/<group>/<name>_seed<k>``. ``report``
reads them all and writes ``benchmarks/results/parcellation_*.{md,csv,png}``:

* per run: best and last validation mean Dice, mean Dice over the 20 smallest structures
  (by voxels in the validation labels), seconds per training epoch, parameters;
* per variant against its no-attention twin (same seeds): the paired difference of
  per-structure Dice with a 95 % bootstrap interval (structures and seeds resampled) and a
  Wilcoxon signed-rank test over structures (seed-mean Dice), so that a tie is stated as
  the size of the difference it rules out.
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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
SMALLEST = 20
CONFIG_2D = str(REPO / "configs" / "brain_parcellation_2d.yaml")
CONFIG_3D = str(REPO / "configs" / "brain_parcellation_3d.yaml")
OPTIONS_2D = {"encoder_name": "resnet18", "encoder_weights": None,
              "decoder_channels": [128, 64, 32, 16, 16]}  # fmt: skip
OPTIONS_3D = {"channels": [16, 32, 64, 128]}
# register then refine, validated on the native-space subjects (split_native.json)
CONFIG_PRIOR = str(REPO / "configs" / "brain_parcellation_3d_prior.yaml")
OPTIONS_PRIOR = {**OPTIONS_3D, "label_prior": True}
# the 2D config validated on the native-space subjects (`scseg data brain_parcellation3d
# --native 8`), with nnU-Net's intensity augmentation and the in-plane turn and scaling on a
# larger crop; 10 epochs (280 steps), a budget that 15 runs fit on two CPU cores
NATIVE_2D = ["--data.init_args.split_file", "split_native.json",
             "--data.init_args.intensity_augmentation", "nnunet",
             "--data.init_args.spatial_margin", "true",
             "--trainer.max_epochs", "10", "--trainer.check_val_every_n_epoch", "10"]  # fmt: skip


def _model(arch: str | None, attention: str, options: dict) -> list[str]:
    args = ["--model.attention", attention, "--model.model_options", json.dumps(options)]
    return (["--model.arch", arch] if arch else []) + args


# group -> {run name: (config, arguments, baseline run name or None)}
GROUPS: dict[str, dict[str, tuple[str, list[str], str | None]]] = {}
for dims, config, options in (("2d", CONFIG_2D, OPTIONS_2D), ("3d", CONFIG_3D, OPTIONS_3D),
                              ("prior", CONFIG_PRIOR, OPTIONS_PRIOR)):  # fmt: skip
    GROUPS[f"ablation_{dims}"] = {
        "none": (config, _model(None, "none", options), None),
        "cse": (config, _model(None, "cse", options), "none"),
        "sse": (config, _model(None, "sse", options), "none"),
        "scse_add": (config, _model(None, "scse", {**options, "combine": "add"}), "none"),
        "scse_max": (config, _model(None, "scse", {**options, "combine": "max"}), "none"),
    }
GROUPS["ablation_native_2d"] = {
    name: (config, [*args, *NATIVE_2D], base)
    for name, (config, args, base) in GROUPS["ablation_2d"].items()
}
# the same scSE network without nnU-Net's intensity set and the larger crop, against the
# ablation's scse_add (a pair named "group/run" is read from that group): what they add
GROUPS["native_2d_augmentation"] = {
    "scse_add_light": (
        CONFIG_2D,
        [*GROUPS["ablation_2d"]["scse_add"][1], *NATIVE_2D,
         "--data.init_args.intensity_augmentation", "light",
         "--data.init_args.spatial_margin", "false"],
        "ablation_native_2d/scse_add",
    ),
}  # fmt: skip
GROUPS["peers_3d"] = {
    f"{name}_{att}": (CONFIG_3D, _model(arch, att, opts), None if att == "none" else f"{name}_none")
    for name, arch, opts in (
        ("unet16_head1", None, {**OPTIONS_3D, "head_kernel_size": 1}),  # before the 3x3 head
        ("unet", "unet", {"channels": [32, 64, 128, 256]}),
        ("monai_unet", "monai_unet", {"channels": [16, 32, 64, 128, 256]}),
        ("monai_dynunet", "monai_dynunet", {"filters": [32, 64, 128, 256]}),
        ("nnunet_plain", "nnunet_plain", {"features": [32, 64, 128, 256]}),
    )
    for att in ("none", "scse")
}  # fmt: skip
GROUPS["peers_2d"] = {
    f"{name}_{att}": (CONFIG_2D, _model(arch, att, opts), None if att == "none" else f"{name}_none")
    for name, arch, opts in (
        ("smp_reference", "smp_reference", OPTIONS_2D),
        ("smp_unet_head1", None, {**OPTIONS_2D, "head_kernel_size": 1}),  # before the 3x3 head
    )
    for att in ("none", "scse")
}  # fmt: skip
# and with a share of its training slices cut obliquely, turned and scaled as the native
# subjects are (MSDSlicesDataModule's oblique_*): the out-of-plane pose a slice cannot show
GROUPS["native_2d_oblique"] = {
    "scse_add_oblique": (
        CONFIG_2D,
        [*GROUPS["ablation_2d"]["scse_add"][1], *NATIVE_2D,
         "--data.init_args.oblique_rotation", "[0.26, 0.26, 0.26]",
         "--data.init_args.oblique_scale", "[0.85, 1.15]",
         "--data.init_args.oblique_prob", "0.5"],
        "ablation_native_2d/scse_add",
    ),
}  # fmt: skip


def run_dir(output: Path, group: str, name: str, seed: int) -> Path:
    return output / group / f"{name}_seed{seed}"


def finished(root: Path) -> bool:
    return any(root.glob("logs/version_*/val_per_class.csv"))


def train(
    root: Path, config: str, args: Sequence[str], seed: int, extra: Sequence[str], threads: int
) -> str:
    cmd = [sys.executable, "-c", "import sys; from scseg.cli import main; sys.exit(main())",
           "fit", "--config", config, *args, "--seed_everything", str(seed),
           "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
           *extra]  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(root / "train.log", "w") as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "OMP_NUM_THREADS": str(threads)})  # fmt: skip
    took = time.perf_counter() - start
    return f"{root.name}: {'ok' if code == 0 else f'FAILED ({code})'} in {took:.0f} s"


def command_run(args: argparse.Namespace) -> int:
    jobs = []
    for seed in range(args.seeds):  # every variant's seed 0 first: a cut-short run pairs
        for group in args.group:
            for name, (config, run_args, _) in GROUPS[group].items():
                root = run_dir(args.output, group, name, seed)
                if args.only and not any(name.startswith(o) for o in args.only):
                    continue
                if not finished(root):
                    jobs.append((root, config, run_args, seed))
    print(f"{len(jobs)} run(s) to train, {args.jobs} at a time", flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        for message in pool.map(lambda j: train(*j, args.extra, args.threads), jobs):
            print(message, flush=True)
    return 0


def read_run(root: Path) -> dict:
    """Scores, per-structure Dice (last validation), epoch time and parameters of a run."""
    log_dir = sorted(root.glob("logs/version_*"))[-1]
    with open(log_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    dice = [float(r["val/dice_mean"]) for r in rows if r.get("val/dice_mean")]
    epoch_s = [float(r["time/train_epoch_s"]) for r in rows if r.get("time/train_epoch_s")]
    with open(log_dir / "val_per_class.csv") as f:
        classes = {r["class"]: (float(r["dice"]), int(r["voxels"])) for r in csv.DictReader(f)}
    return {"best_dice": max(dice), "last_dice": dice[-1], "classes": classes,
            # the first epoch carries start-up (caching, cuDNN autotuning): left out
            "epoch_s": statistics.median(epoch_s[1:] or epoch_s),
            "params": parameters(log_dir / "config.yaml"),
            "steps": _steps(rows)}  # fmt: skip


def _steps(rows: list[dict]) -> int:
    return max(int(r["step"]) for r in rows if r.get("step")) + 1


def parameters(config: Path) -> int:
    import yaml

    import scseg

    model = yaml.safe_load(config.read_text())["model"]
    net = scseg.create_model(
        model["arch"], spatial_dims=model["spatial_dims"], in_channels=model["in_channels"],
        classes=model["classes"], attention=model["attention"],
        **(model.get("model_options") or {}),
    )  # fmt: skip
    return sum(p.numel() for p in net.parameters())


def small_mean(classes: dict[str, tuple[float, int]], names: Sequence[str]) -> float:
    values = [classes[n][0] for n in names if n in classes and classes[n][0] == classes[n][0]]
    return float(np.mean(values)) if values else float("nan")


def paired(
    runs: dict[int, dict], base: dict[int, dict], names: Sequence[str], rng: np.random.Generator
) -> dict:
    """Per-structure Dice differences, paired by seed and structure."""
    from scipy.stats import wilcoxon

    seeds = sorted(set(runs) & set(base))
    diff = np.array([[runs[s]["classes"][n][0] - base[s]["classes"][n][0] for n in names]
                     for s in seeds])  # fmt: skip
    keep = ~np.isnan(diff).any(0)
    diff = diff[:, keep]
    boot = []
    for _ in range(2000):
        si = rng.integers(0, len(seeds), len(seeds))
        ci = rng.integers(0, diff.shape[1], diff.shape[1])
        boot.append(diff[np.ix_(si, ci)].mean())
    lo, hi = np.percentile(boot, [2.5, 97.5])
    p = float(wilcoxon(diff.mean(0)).pvalue) if diff.shape[1] > 0 else float("nan")
    return {"diff": float(diff.mean()), "lo": float(lo), "hi": float(hi), "p": p,
            "structures": int(diff.shape[1]), "seeds": len(seeds)}  # fmt: skip


def _fmt(values: Sequence[float]) -> str:
    if len(values) > 1:
        return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"
    return f"{values[0]:.4f}"


def report_group(group: str, output: Path, rng: np.random.Generator, prefix: str) -> str | None:
    runs: dict[str, dict[int, dict]] = {}
    for name in GROUPS[group]:
        for root in sorted((output / group).glob(f"{name}_seed*")):
            seed = int(root.name.rsplit("_seed", 1)[1])
            if finished(root):
                runs.setdefault(name, {})[seed] = read_run(root)
    if not runs:
        return None
    # Structures and their size from the validation labels (the same in every run).
    any_run = next(iter(next(iter(runs.values())).values()))
    sizes = {n: v for n, (_, v) in any_run["classes"].items()}
    names = [n for n in sizes if sizes[n] > 0]
    smallest = sorted(names, key=sizes.get)[:SMALLEST]
    for base_name in {b for _, _, b in GROUPS[group].values() if b and "/" in b}:
        other, other_name = base_name.split("/")
        for root in sorted((output / other).glob(f"{other_name}_seed*")):
            if finished(root):
                seed = int(root.name.rsplit("_seed", 1)[1])
                runs.setdefault(base_name, {})[seed] = read_run(root)
    rows = []
    for name, by_seed in runs.items():
        if name not in GROUPS[group]:
            continue  # a pair from another group: only compared against
        base_name = GROUPS[group][name][2]
        seeds = sorted(by_seed)
        row = {
            "group": group, "variant": name, "seeds": len(seeds),
            "best_dice": [by_seed[s]["best_dice"] for s in seeds],
            "last_dice": [by_seed[s]["last_dice"] for s in seeds],
            "small_dice": [small_mean(by_seed[s]["classes"], smallest) for s in seeds],
            "epoch_s": [by_seed[s]["epoch_s"] for s in seeds],
            "params": by_seed[seeds[0]]["params"],
            "steps": by_seed[seeds[0]]["steps"],
        }  # fmt: skip
        if base_name and base_name in runs:
            row["vs"] = base_name
            row["all"] = paired(by_seed, runs[base_name], names, rng)
            row["small"] = paired(by_seed, runs[base_name], smallest, rng)
        rows.append(row)
    lines = [
        f"### {group}: {len(names)} structures scored on the validation cases, "
        f"{len(rows[0]['last_dice'])} seeds",
        "",
        "| variant | params | steps | last val Dice | best val Dice | 20 smallest, Dice "
        "| s / epoch | Δ Dice vs its pair [95 % CI], Wilcoxon p | Δ 20 smallest [95 % CI] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        delta = small = ""
        if "all" in r:
            a, s = r["all"], r["small"]
            delta = (f"{a['diff']:+.4f} [{a['lo']:+.4f}, {a['hi']:+.4f}], p={a['p']:.2g} "
                     f"(vs {r['vs']})")  # fmt: skip
            small = f"{s['diff']:+.4f} [{s['lo']:+.4f}, {s['hi']:+.4f}]"
        lines.append(
            f"| {r['variant']} | {r['params'] / 1e6:.2f} M | {r['steps']} | "
            f"{_fmt(r['last_dice'])} | "
            f"{_fmt(r['best_dice'])} | {_fmt(r['small_dice'])} | "
            f"{statistics.median(r['epoch_s']):.2f} | {delta} | {small} |"
        )
    lines += ["", f"20 smallest structures (validation voxels at 2 mm): {', '.join(smallest)}."]
    if group in NATIVE_GROUPS:
        lines += ["", *native_baselines()]
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / f"{prefix}_{group}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["variant", "seed", "last_dice", "best_dice", "small_dice", "epoch_s",
                         "params"])  # fmt: skip
        for r in rows:
            for i in range(r["seeds"]):
                writer.writerow([r["variant"], i, r["last_dice"][i], r["best_dice"][i],
                                 r["small_dice"][i], r["epoch_s"][i], r["params"]])  # fmt: skip
    with open(RESULTS / f"{prefix}_{group}_structures.csv", "w", newline="") as f:
        writer = csv.writer(f)  # what the paired statistics are computed from
        writer.writerow(["variant", "seed", "structure", "dice", "voxels"])
        for name, by_seed in runs.items():
            if name not in GROUPS[group]:
                continue
            for seed, run in sorted(by_seed.items()):
                for structure, (dice, voxels) in run["classes"].items():
                    writer.writerow([name, seed, structure, f"{dice:.6g}", voxels])
    plot(rows, group, RESULTS / f"{prefix}_{group}.png")
    return "\n".join(lines)


NATIVE_GROUPS = ("ablation_native_2d", "native_2d_augmentation", "native_2d_oblique",
                 "ablation_prior")  # fmt: skip
BASELINES = ("atlas copy", "affine registration", "affine + deformable registration (demons)")


def native_baselines() -> list[str]:
    """The no-learning rows on the same native subjects (parcellation_baselines.py)."""
    path = RESULTS / "parcellation_baselines.json"
    if not path.exists():
        return [f"No baselines yet: run benchmarks/parcellation_baselines.py --native 8 ({path})."]
    rows = [r for r in json.loads(path.read_text())["rows"] if r["case"].startswith("native_")]
    lines = ["Beside it, what needs no learning on the same subjects (scored at 1 mm, "
             "[parcellation_baselines.md](parcellation_baselines.md)):", "",
             "| baseline | mean Dice ± sd (min) | seconds per subject (median) |",
             "|---|---|---|"]  # fmt: skip
    for method in BASELINES:
        mine = [r for r in rows if r["method"] == method]
        if mine:
            dice = [r["dice"] for r in mine]  # sd as parcellation_baselines.md gives it
            seconds = statistics.median(r["seconds"] for r in mine)
            spread = f"{statistics.pstdev(dice):.3f} ({min(dice):.3f})"
            lines.append(f"| {method} | {statistics.mean(dice):.3f} ± {spread} | {seconds:.1f} |")
    return lines


def plot(rows: list[dict], group: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(max(6, 1.3 * len(rows) + 2), 3.6))
    for ax, key, label in ((axes[0], "last_dice", "mean Dice, all structures"),
                           (axes[1], "small_dice", f"mean Dice, {SMALLEST} smallest")):  # fmt: skip
        for i, r in enumerate(rows):
            values = r[key]
            ax.scatter([i] * len(values), values, alpha=0.7, color="C0")
            ax.hlines(statistics.mean(values), i - 0.25, i + 0.25, color="black")
        ax.set_xticks(range(len(rows)), [r["variant"] for r in rows], rotation=45, ha="right")
        ax.set_ylabel(label)
    fig.suptitle(f"{group}: every seed (dots) and the mean (bar), last validation")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def command_report(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(0)
    parts = ["<!-- generated by benchmarks/parcellation.py report; do not edit -->", ""]
    for group in GROUPS:
        text = report_group(group, args.output, rng, args.prefix)
        if text:
            parts += [text, ""]
    path = RESULTS / f"{args.prefix}.md"
    path.write_text("\n".join(parts))
    print(path.read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train the runs of some groups")
    run.add_argument("--group", nargs="+", choices=sorted(GROUPS), default=sorted(GROUPS))
    run.add_argument("--seeds", type=int, default=3)
    run.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    run.add_argument("--only", nargs="+", help="only the runs whose names start so")
    run.add_argument(
        "--threads",
        type=int,
        default=2,
        help="threads per run (on two cores, --jobs 2 "
        "--threads 1 trains 1.3 times as many steps an hour as one run on both)",
    )
    run.add_argument(
        "--extra",
        nargs=argparse.REMAINDER,
        default=[],
        help="arguments for every 'scseg fit' (last on the line)",
    )
    run.set_defaults(func=command_run)
    report = sub.add_parser("report", help="tables and plots from finished runs")
    report.add_argument("--prefix", default="parcellation", help="results file names")
    report.set_defaults(func=command_report)
    for p in (run, report):
        p.add_argument("--output", type=Path, default=REPO / "runs" / "parcellation")
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
