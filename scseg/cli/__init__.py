"""The ``scseg`` command line: one module per command, each owning its options
(``add_parser(subparsers)``) and its handler (``run(args)``); this one assembles the
parser and dispatches. ``fit``/``validate``/``test`` go to LightningCLI
(:mod:`scseg.cli.train`). Heavy imports live inside the handlers, so ``scseg --help``
starts in well under a second.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from scseg.cli import (
    ablate,
    attention,
    cross_validate,
    data,
    evaluate,
    export,
    models,
    package,
    plan,
    predict,
    train,
    view,
)
from scseg.cli.common import LIGHTNING_COMMANDS, USER_ERRORS, Parser

# in the order ``scseg --help`` lists them
COMMANDS = (train, models, predict, view, plan, cross_validate, evaluate, attention, ablate,
            export, package, data)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from scseg import __version__

    parser = Parser(
        prog="scseg",
        description="U-Nets with cSE/sSE/scSE recalibration, 2D and 3D. "
        f"Training: scseg {{{','.join(LIGHTNING_COMMANDS)}}} --config FILE (see --help of each).",
    )
    parser.add_argument("--version", action="version", version=f"scseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _quiet_dependency_noise() -> None:
    """Silence what our dependencies print that no user can act on:

    * MONAI tries an optional GPU decoder (nvImageCodec) for pydicom wherever pydicom is
      installed, and says it is absent: a log line on import and a warning from every
      ``LoadImage`` (every training and prediction case).
    * timm (imported by SMP) declares a ``torch.jit.interface`` at import, which torch 2.13
      deprecates: a FutureWarning before every command's output, even a one-line error.
    """
    import logging

    logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader: nvImageCodec decoder")
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.interface` is deprecated", category=FutureWarning
    )


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings (about the user's data) as one line each, like our errors; the
    dependencies' keep Python's format."""
    if category.__module__.startswith("scseg."):
        print(f"scseg: warning: {message}", file=sys.stderr if file is None else file)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    _quiet_dependency_noise()
    warnings.showwarning = _show_warning
    try:
        if words and words[0] in LIGHTNING_COMMANDS:
            return train.run(argv)
        args, rest = build_parser().parse_known_args(words)
        if getattr(args, "takes_rest", False):  # options passed on (ablate) or to a script
            return args.run(args, rest)
        if rest:
            build_parser().error(f"unrecognized arguments: {' '.join(rest)}")
        return args.run(args)
    except USER_ERRORS as err:
        if os.environ.get("SCSEG_DEBUG"):
            raise
        print(f"scseg: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("scseg: interrupted", file=sys.stderr)
        return 130
