"""``scseg package``: checkpoints into one self-describing model package, and its card."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    package = sub.add_parser(
        "package", help="pack checkpoints into a .scseg model package, or print a package's card"
    )
    what = package.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--checkpoint",
        type=Path,
        nargs="+",
        help="scseg .ckpt file; several: the folds of one plan (averaged at prediction)",
    )
    what.add_argument("--info", type=Path, metavar="PACKAGE", help="print a package's model card")
    package.add_argument("--out", type=Path, help="the package to write, NAME.scseg")
    package.add_argument("--description", help="a sentence for the model card")
    package.add_argument("--overwrite", action="store_true", help="replace an existing package")
    package.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scseg.inference.package import read_card, write_package

    if args.info is not None:
        print(read_card(args.info), end="")
        return 0
    if args.out is None:
        raise ValueError("--out NAME.scseg is needed to write a package")
    from scseg.cli.common import check_writable

    check_writable(args.out)
    path = write_package(args.checkpoint, args.out, args.overwrite, args.description)
    print(f"{path}: {len(args.checkpoint)} fold(s); scseg predict --model {path} ...")
    return 0
