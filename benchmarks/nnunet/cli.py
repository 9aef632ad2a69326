"""The command line of the head-to-head (``benchmarks/against_nnunet.py``)."""

from __future__ import annotations

import argparse

from nnunet.report import report
from nnunet.runs import repredict, run, training_fit
from nnunet.settings import DATASETS, NOTES, PLANS, VARIANTS


def main(description: str) -> None:
    """Parses the command line and runs its command; ``description``: the entry script's."""
    parser = argparse.ArgumentParser(description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run")
    go.add_argument("--dataset", choices=DATASETS, required=True)
    go.add_argument("--epochs", type=int, default=8, help="of scseg's steps per epoch")
    go.add_argument("--repeat", type=int, default=0, help="scseg's seed; nnU-Net is unseeded")
    go.add_argument("--dims", type=int, choices=(2, 3), default=3, help="3: scseg's planned "
                    "3D U-Net against nnU-Net's 3d_fullres; 2: slice by slice, against its "
                    "2d")  # fmt: skip
    go.add_argument("--variant", choices=VARIANTS, help="only this scseg plan variant")
    go.add_argument("--no-equal-time", action="store_true", help="equal steps only")
    go.add_argument("--note", choices=NOTES, help="mark the rows (their training times)")
    go.add_argument("--equal-time-epochs", type=int, help="only the equal-time run, for this "
                    "many epochs (what an earlier repeat found)")  # fmt: skip
    go.add_argument(
        "--equal-time-for",
        choices=("scseg", "nnunet"),
        default="scseg",
        help="whose equal-time run --equal-time-epochs makes (the faster one's)",
    )
    go.add_argument("--nnunet-only", action="store_true", help="only nnU-Net's equal-steps run "
                    "(another repeat of it)")  # fmt: skip
    go.add_argument("--scseg-only", action="store_true", help="only scseg's equal-steps run "
                    "(after a change to scseg; nnU-Net's repeats are kept)")  # fmt: skip
    go.set_defaults(fn=run)
    which = argparse.ArgumentParser(add_help=False)  # the runs a later command reads
    which.add_argument("--dataset", choices=DATASETS, required=True)
    which.add_argument("--dims", type=int, choices=(2, 3), default=3)
    which.add_argument("--repeat", type=int, default=0)
    which.add_argument("--epochs", type=int, help="the runs' budget (the dataset's standard one)")
    seen = sub.add_parser("training-fit", parents=[which],
                          help="the runs' models on their own training cases")  # fmt: skip
    seen.add_argument("--only", choices=("scseg", "nnU-Net"), help="only this pipeline's models")
    seen.set_defaults(fn=training_fit)
    again = sub.add_parser("repredict", parents=[which],
                           help="scseg's equal-steps model predicts again")  # fmt: skip
    again.add_argument("--earlier", choices=PLANS, required=True, help="the earlier rows' label")
    again.set_defaults(fn=repredict)
    tables = sub.add_parser("report", help="the tables from the results file")
    tables.add_argument("--out", help="write the tables here instead of benchmarks/results/")
    tables.set_defaults(fn=report)
    args = parser.parse_args()
    args.fn(args)
