"""``scseg ablate``: one config trained with each attention variant and several seeds."""

from __future__ import annotations

import argparse
from pathlib import Path

from scseg.cli.common import positive_int


def add_parser(sub) -> None:
    ablate = sub.add_parser(
        "ablate",
        help="train a config with none/cse/sse/scse and several seeds; table, CSV and plot",
        description="Other arguments are passed to every 'scseg fit', e.g. --trainer.max_epochs 5",
    )
    ablate.add_argument("--config", required=True, help="a training config (YAML)")
    ablate.add_argument("--seeds", type=positive_int, default=3, help="seeds 0..N-1 per variant")
    ablate.add_argument("--variants", nargs="+", default=["none", "cse", "sse", "scse"])
    ablate.add_argument("--output", type=Path, help="default: runs/ablation_<config>")
    ablate.set_defaults(run=run, takes_rest=True)


def run(args: argparse.Namespace, overrides: list[str]) -> int:
    from scseg.cli import main
    from scseg.training.ablation import run_ablation, summarise

    output = args.output or Path("runs") / f"ablation_{Path(args.config).stem}"
    results = run_ablation(args.config, args.seeds, output, main, args.variants, overrides)
    for path in summarise(results, output, f"{Path(args.config).stem}, {args.seeds} seeds"):
        print(path)
    print((output / "ablation.md").read_text())
    return 0
