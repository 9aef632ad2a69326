"""``scseg plan``: fingerprint a dataset folder and write a training config and split."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scseg.cli.common import check_writable, positive_int


def add_parser(sub) -> None:
    plan = sub.add_parser(
        "plan",
        help="fingerprint a dataset folder and write a training config and split for it",
        description="Reads a 2D folder (images/, masks/) or an MSD-layout folder (imagesTr/, "
        "labelsTr/, dataset.json optional), checks every case, and chooses spacing, patch, "
        "batch, network and normalisation after nnU-Net's rules; each choice is explained "
        "in the YAML.",
    )
    plan.add_argument("--data", required=True, type=Path, help="the dataset folder")
    plan.add_argument(
        "--out", required=True, type=Path, help="config to write (and <name>_split.json beside it)"
    )
    plan.add_argument(
        "--memory",
        type=float,
        help="GiB for training (default: the GPU's, or 8 on a CPU as nnU-Net's reference)",
    )
    plan.add_argument(
        "--ram",
        type=float,
        help="GiB of RAM the preprocessed data may take in "
        "memory (default: half of this machine's); beyond half of it: on disk",
    )
    plan.add_argument("--folds", type=positive_int, default=0, help="also K folds (2 or more)")
    plan.add_argument(
        "--dims",
        type=int,
        choices=(2, 3),
        help="3: a 3D U-Net; 2: slice by slice (default: the data's own; for volumes both, the "
        "slice-wise config in <out stem>_2d.yaml, sharing the split)",
    )
    plan.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        help="where training will run (default: here: cuda if present)",
    )
    plan.add_argument(
        "--spacing", type=float, nargs=3, help="3D: target spacing (mm) instead of the planned one"
    )
    plan.add_argument("--epochs", type=positive_int, default=100, help="of 50 steps (default 100)")
    plan.add_argument("--seed", type=int, default=0, help="of the split (default 0)")
    plan.add_argument(
        "--subject-pattern",
        help="regex whose first group (or whole match) is a case's subject: a subject's "
        "cases stay on one side of every split (default: BIDS sub-<label> where names carry it)",
    )
    plan.add_argument(
        "--schedule", choices=("scseg", "nnunet"), default="scseg", help="optimisation: "
        "scseg's AdamW 0.003 with a cosine schedule (default), or nnU-Net's SGD 0.01 with "
        "Nesterov momentum 0.99, poly decay and weight decay 3e-5"
    )  # fmt: skip
    plan.add_argument("--overwrite", action="store_true", help="replace existing files")
    plan.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from scseg.planning import plan_dataset, summary_tables

    check_writable(args.out)
    run = plan_dataset(args.data, args.out, args.memory, args.ram, args.folds, args.dims,
                       args.seed, args.epochs, args.spacing, args.subject_pattern,
                       None if args.device is None else args.device == "cpu",
                       args.overwrite, args.schedule)  # fmt: skip
    console = Console(width=None if sys.stdout.isatty() else 120)
    for table in summary_tables(run):
        console.print(table)
    configs = [str(config) for config, _ in run.configs]
    print(f"wrote {', '.join(configs)} and {run.split_file}")
    if args.folds and len(configs) > 1:
        print(
            f"next: scseg cross-validate --plan {run.config} (trains every configuration on "
            "every fold and chooses)"
        )
    else:
        fold = " --data.init_args.fold 0" if args.folds else ""
        print(f"next: scseg fit --config {run.config}{fold}")
    return 0
