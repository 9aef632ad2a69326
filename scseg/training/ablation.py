"""``scseg ablate``: the same config trained with each attention type and several seeds.

Every run has the same budget (the config's), differs only in ``model.attention`` and the
seed, and is scored by its best validation ``val/dice_mean`` (and the last epoch's). The
table gives mean and sample standard deviation over seeds; the plot shows every seed.
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

VARIANTS = ("none", "cse", "sse", "scse")


def read_run(root: Path) -> dict[str, float]:
    """Best and last ``val/dice_mean`` (and last per-class Dice) of a finished run."""
    files = sorted(root.glob("logs/version_*/metrics.csv"))
    if not files:
        raise FileNotFoundError(f"{root}: no metrics.csv (did the run finish?)")
    with open(files[-1]) as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/dice_mean")]
    if not rows:
        raise ValueError(f"{files[-1]}: no validation results")
    scores = [float(r["val/dice_mean"]) for r in rows]
    out = {"best_dice": max(scores), "last_dice": scores[-1], "epochs": len(rows)}
    for key, value in rows[-1].items():
        if key.startswith("val/dice/") and value:
            out[f"last_{key[4:]}"] = float(value)
    return out


def run_ablation(
    config: str,
    seeds: int,
    output: Path,
    fit: Callable[[list[str]], int],
    variants: Sequence[str] = VARIANTS,
    overrides: Sequence[str] = (),
) -> list[dict]:
    """Trains every variant with seeds 0..seeds-1 via ``fit(args)`` and collects scores.

    A run whose results exist already (``<output>/<variant>_seed<k>``) is read, not redone,
    so an interrupted ablation continues where it stopped.
    """
    results = []
    for variant in variants:
        for seed in range(seeds):
            root = output / f"{variant}_seed{seed}"
            try:
                scores = read_run(root)
            except (FileNotFoundError, ValueError):
                args = ["fit", "--config", config, "--model.attention", variant,
                        "--seed_everything", str(seed), "--trainer.default_root_dir", str(root),
                        *overrides]  # fmt: skip
                if fit(args) != 0:
                    raise RuntimeError(f"{root}: training failed") from None
                scores = read_run(root)
            results.append({"variant": variant, "seed": seed, **scores})
    return results


def summarise(results: list[dict], output: Path, title: str) -> tuple[Path, Path, Path]:
    """Writes ``ablation.csv``, ``ablation.md`` and ``ablation.png`` into ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for r in results for k in r}, key=lambda k: (k not in ("variant", "seed"), k))
    csv_path = output / "ablation.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(results)
    variants = list(dict.fromkeys(r["variant"] for r in results))
    lines = [f"### {title}", "",
             "| attention | best val Dice, mean ± sd | last val Dice, mean ± sd | seeds |",
             "|---|---|---|---|"]  # fmt: skip
    stats = {}
    for v in variants:
        best = [r["best_dice"] for r in results if r["variant"] == v]
        last = [r["last_dice"] for r in results if r["variant"] == v]
        sd = statistics.stdev(best) if len(best) > 1 else 0.0
        sd_last = statistics.stdev(last) if len(last) > 1 else 0.0
        stats[v] = (statistics.mean(best), sd, best)
        lines.append(f"| {v} | {statistics.mean(best):.4f} ± {sd:.4f} | "
                     f"{statistics.mean(last):.4f} ± {sd_last:.4f} | {len(best)} |")  # fmt: skip
    md_path = output / "ablation.md"
    md_path.write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for i, v in enumerate(variants):
        mean, sd, points = stats[v]
        ax.errorbar(i, mean, yerr=sd, fmt="o", capsize=6, color="black")
        ax.scatter([i + 0.12] * len(points), points, alpha=0.6)
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylabel("best validation Dice (mean)")
    ax.set_title(title)
    fig.tight_layout()
    png_path = output / "ablation.png"
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return csv_path, md_path, png_path
