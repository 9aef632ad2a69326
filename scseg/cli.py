"""The ``scseg`` command line."""

from __future__ import annotations

import argparse
import sys

import scseg


def _models(args: argparse.Namespace) -> int:
    for name in scseg.list_models():
        print(name)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scseg", description="U-Nets with cSE/sSE/scSE recalibration, 2D and 3D."
    )
    parser.add_argument("--version", action="version", version=f"scseg {scseg.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list the model names create_model accepts").set_defaults(
        func=_models
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
