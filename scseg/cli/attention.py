"""``scseg attention``: figures and an HTML report of the sSE maps and cSE weights."""

from __future__ import annotations

import argparse
from pathlib import Path

from scseg.cli.common import add_model_source, load_source, model_source


def add_parser(sub) -> None:
    attention = sub.add_parser("attention", help="figures of the sSE maps and cSE weights")
    add_model_source(attention)
    attention.add_argument("--input", required=True, type=Path, help="an image or a volume")
    attention.add_argument("--output", required=True, type=Path, help="output folder")
    attention.add_argument("--html", action="store_true",
                           help="also write <name>_attention.html: one self-contained page "
                           "with slice slider, overlays and cSE bar charts")  # fmt: skip
    attention.add_argument(
        "--radiological", action="store_true", help="volumes with the patient's right on the "
        "screen's left, as radiology viewers show them (default: on the right, neurological)"
    )  # fmt: skip
    attention.add_argument("--overwrite", action="store_true", help="replace existing figures")
    attention.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")  # figures go to files; a notebook keeps its own backend
    from scseg.inference.figures import attention_figures

    model = load_source(args)
    for path in attention_figures(model, args.input, args.output, args.overwrite, args.html,
                                  model_source(args), args.radiological):  # fmt: skip
        print(path)
    return 0
