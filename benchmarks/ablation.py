"""Accuracy ablation: none/cse/sse/scse x 3 seeds on the real nuclei sample (the 2D
quickstart as it is) and on the brain-tissue sample (the 3D quickstart at a reduced budget
for two CPU cores). Same as ``scseg ablate``; results go to benchmarks/results/.

    uv run python benchmarks/ablation.py [--only 2d|3d] [--seeds 3]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from scseg.cli import main as scseg

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RUNS = {
    "2d": ("quickstart_2d.yaml", ["--trainer.enable_progress_bar", "false"]),
    # 6 epochs of 3 steps instead of 12 of 6: the 12 runs fit in about half an hour.
    "3d": ("quickstart_3d.yaml", ["--trainer.max_epochs", "6", "--data.init_args.repeats", "6",
                                  "--trainer.enable_progress_bar", "false"]),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=tuple(RUNS))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    for key, (config, overrides) in RUNS.items():
        if args.only and key != args.only:
            continue
        output = REPO / "runs" / f"ablation_{key}"
        code = scseg(["ablate", "--config", str(REPO / "configs" / config), "--seeds",
                      str(args.seeds), "--output", str(output), *overrides])  # fmt: skip
        if code != 0:
            raise SystemExit(code)
        results = HERE / "results"
        results.mkdir(exist_ok=True)
        for suffix in ("csv", "md", "png"):
            shutil.copy(output / f"ablation.{suffix}", results / f"ablation_{key}.{suffix}")


if __name__ == "__main__":
    main()
