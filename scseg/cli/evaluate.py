"""``scseg evaluate``: label maps against ground truth, per case and class, in mm."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scseg.cli.common import check_writable, non_negative_int


def add_parser(sub) -> None:
    evaluate = sub.add_parser(
        "evaluate",
        help="score label maps against ground truth: Dice, IoU, HD95, MSD, NSD per case and class",
        description="Surface metrics in mm from the files' spacing (pixels for PNG masks). "
        "A structure absent from truth and prediction is not scored; absent from one only, "
        "it scores Dice/IoU/NSD 0 and HD95/MSD the grid's diagonal.",
    )
    evaluate.add_argument("--prediction", required=True, type=Path, help="folder of label maps")
    evaluate.add_argument(
        "--truth", required=True, type=Path, help="folder of ground truth, same file names"
    )
    evaluate.add_argument("--out", required=True, type=Path, help="CSV of scores to write")
    evaluate.add_argument(
        "--classes", nargs="+", help="a name per label value, background first (default: the "
        "prediction's .tsv label tables or dataset.json)"
    )  # fmt: skip
    evaluate.add_argument("--tolerance", type=float, default=1.0,
                          help="NSD tolerance, mm (pixels for PNG masks); default 1")  # fmt: skip
    evaluate.add_argument(
        "--split", type=Path, help="a split file (scseg plan's): score its validation cases only"
    )
    evaluate.add_argument(
        "--fold", type=non_negative_int, help="with --split: score fold K's validation cases "
        "(a split with folds needs it: each fold validates on other cases)"
    )  # fmt: skip
    evaluate.add_argument(
        "--ignore-label", type=non_negative_int, help="a truth value meaning 'not annotated', "
        "left out of every score (default: dataset.json's labels.ignore beside or above --truth)"
    )  # fmt: skip
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing CSV")
    evaluate.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from scseg.evaluation import dataset_labels, evaluate, summarise, summary_table, write_csv
    from scseg.inference.writing import refuse_existing

    refuse_existing([args.out], args.overwrite)  # before the work, not after
    check_writable(args.out)
    cases = None
    if args.split is not None:
        from scseg.data.base import read_split

        cases = read_split(args.split.parent, args.split.name, args.fold)["val"]
        if args.fold is None and json.loads(args.split.read_text()).get("folds"):
            raise ValueError(
                f"{args.split}: has folds; name the one the model trained on with --fold K "
                "(its validation cases are not the top-level 'val')"
            )
    elif args.fold is not None:
        raise ValueError("--fold needs --split (the split file that holds the folds)")
    scheme = dataset_labels(args.truth)
    ignore = args.ignore_label if args.ignore_label is not None else scheme and scheme.ignore
    regions = scheme if scheme is not None and scheme.multilabel else None
    console = Console(stderr=True)
    with console.status("scoring") as status:
        rows, names, unit = evaluate(args.prediction, args.truth, args.classes, args.tolerance,
                                     lambda case: status.update(f"scoring {case}"), cases,
                                     ignore, regions)  # fmt: skip
    write_csv(rows, args.out, args.overwrite)
    # piped output (a log) gets the whole table, not one cut to 80 columns
    wide = Console(width=None if sys.stdout.isatty() else 200)
    wide.print(summary_table(summarise(rows), unit, args.tolerance))
    cases = len({r["case"] for r in rows})
    what = "region(s) (may overlap)" if regions else "class(es)"
    unit = "region" if regions else "class"
    print(f"{cases} case(s), {len(names) - 1} {what}; per case and {unit}: {args.out}")
    if ignore is not None:
        print(f"scored on annotated voxels only: truth label {ignore} means not annotated")
    return 0
