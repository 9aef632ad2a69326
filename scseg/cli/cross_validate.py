"""``scseg cross-validate``: train every planned configuration on every fold, score them
and their ensemble on the held-out folds, and package the best."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    cv = sub.add_parser(
        "cross-validate",
        help="train each planned configuration on each fold, choose the best (or their "
        "ensemble) by cross-validation, and package it",
        description="As nnU-Net's find_best_configuration: each configuration trained on "
        "each fold of the plan's split (scseg fit, resumed where a run stopped), each fold's "
        "held-out cases predicted with their probabilities, the ensemble of each pair scored "
        "from those, all by scseg evaluate's Dice. Other arguments go to every scseg fit, "
        "e.g. --trainer.max_epochs 20 or --trainer.devices 2.",
    )
    what = cv.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--plan", type=Path, metavar="CONFIG",
        help="the config scseg plan wrote (its slice-wise <stem>_2d.yaml beside it joins)",
    )  # fmt: skip
    what.add_argument("--config", type=Path, nargs="+", help="configs sharing one split file")
    cv.add_argument("--out", type=Path, help="where runs, predictions and the package go "
                    "(default: runs/<plan stem>_cv)")  # fmt: skip
    cv.add_argument(
        "--choose", metavar="NAME",
        help="package this candidate (3d, 2d, 3d+2d, ...) instead of the best",
    )  # fmt: skip
    cv.add_argument("--tta", action="store_true", help="mirror the held-out predictions")
    cv.set_defaults(run=run, takes_rest=True)


def run(args: argparse.Namespace, fit_args: list[str]) -> int:
    from rich.console import Console

    from scseg.planning import slicewise_config
    from scseg.selection import (
        choose,
        cross_validate,
        folds,
        package_choice,
        read_configurations,
        table,
        write_results,
    )
    from scseg.selection.choice import markdown

    if unknown := [a for a in fit_args if a.startswith("-") and not a.startswith("--")]:
        raise ValueError(f"unrecognized arguments: {' '.join(unknown)}")
    if args.plan is not None:
        configs = [args.plan] + [p for p in [slicewise_config(args.plan)] if p.is_file()]
    else:
        configs = list(args.config)
    configurations = read_configurations(configs)
    out = args.out or Path("runs") / f"{configs[0].stem}_cv"
    count = len(folds(configurations[0]))
    names = ", ".join(c.name for c in configurations)
    print(f"cross-validating {names} on {count} folds into {out}", flush=True)
    candidates = cross_validate(configurations, out, fit_args, args.tta,
                                lambda line: print(line, flush=True))  # fmt: skip
    chosen = choose(candidates, args.choose)
    Console(width=None if sys.stdout.isatty() else 120).print(table(candidates, chosen, count))
    results = write_results(out, candidates, chosen, count)
    package = package_choice(out, chosen, candidates[0], configurations, count,
                             markdown(candidates, chosen))  # fmt: skip
    how = "chosen by you" if args.choose else "the best cross-validation Dice"
    print(f"chosen: {chosen.name} ({how}); scores: {results}")
    print(f"package: {package}; next: scseg predict --model {package} --input ... --output ...")
    return 0
