"""What every command shares: the error types shown as one line, argparse types with
one-line messages, and the check that an output can be written before any work."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

LIGHTNING_COMMANDS = ("fit", "validate", "test")
USER_ERRORS = (ValueError, OSError, RuntimeError, FloatingPointError)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the problem and where to read more, no usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def at_least(low: int):
    """An argparse type: a whole number of at least ``low``."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return whole


positive_int = at_least(1)
non_negative_int = at_least(0)


def overlap(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def check_writable(path: Path) -> None:
    """Raises a one-line OSError if ``path`` could not be created, before any work."""
    folder = path.parent if str(path.parent) else Path(".")
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OSError(f"{path}: cannot write here ({existing} is not a writable folder)")


def add_model_source(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """``--checkpoint CKPT`` (several: the folds of a plan, averaged) or ``--model PKG``."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--checkpoint",
        type=Path,
        nargs="+" if several else None,
        help="scseg .ckpt file"
        + ("; several (the folds of a plan): their probabilities are averaged" if several else ""),
    )
    group.add_argument(
        "--model", type=Path, help="an scseg model package (.scseg, see scseg package)"
    )


def load_source(args: argparse.Namespace, device: str = "cpu", ensembles: bool = False):
    """The model named by ``--model`` or ``--checkpoint`` (:func:`add_model_source`);
    ``ensembles``: an ensemble package may be given (prediction reads it)."""
    if args.model is not None:
        from scseg.inference.package import read_package

        return read_package(args.model, device, ensembles)
    from scseg.inference import load_models

    return load_models(args.checkpoint, device)


def model_source(args: argparse.Namespace) -> Path:
    """The file the model came from, for naming it in outputs."""
    return args.model if args.model is not None else args.checkpoint
