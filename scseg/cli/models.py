"""``scseg models``: the model names ``create_model`` accepts."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    models = sub.add_parser("models", help="list the model names create_model accepts")
    models.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import scseg

    for name in scseg.list_models():
        print(name)
    return 0
