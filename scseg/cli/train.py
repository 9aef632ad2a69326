"""``scseg fit|validate|test --config FILE``: LightningCLI with our checkpointing, loggers,
report and AMP defaults; its errors as one line that names the key."""

from __future__ import annotations

import sys

from scseg.cli.common import LIGHTNING_COMMANDS


def add_parser(sub) -> None:
    """Placeholders in ``scseg --help``; LightningCLI parses these commands itself."""
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(name, help=f"{name} from a YAML config (LightningCLI)", add_help=False)


def run(argv: list[str] | None) -> int:
    # argv None: LightningCLI reads sys.argv itself (passing both makes it warn).
    from jsonargparse import ArgumentError
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from scseg.data.base import SegmentationDataModule
    from scseg.training import SegmentationModule
    from scseg.training.cli import SCSegCLI, default_callbacks

    try:
        SCSegCLI(
            SegmentationModule,
            # data.class_path must name a subclass of our base (no arbitrary classes)
            SegmentationDataModule,
            subclass_mode_data=True,
            args=argv,
            trainer_defaults={
                "default_root_dir": "runs/scseg",
                "logger": False,
                "callbacks": default_callbacks(),
            },
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            # errors come back to us as exceptions, printed as one line below, instead of
            # ~80 lines of usage
            parser_kwargs={
                "exit_on_error": False,
                **{name: {"exit_on_error": False} for name in LIGHTNING_COMMANDS},
            },
        )
    except ArgumentError as err:
        command = next((w for w in (argv or sys.argv[1:]) if w in LIGHTNING_COMMANDS), "fit")
        print(f"scseg {command}: error: {_one_line(str(err))} (see scseg {command} --help)",
              file=sys.stderr)  # fmt: skip
        return 2
    except SIGTERMException:  # a SystemExit without a code: it would exit 0
        print(
            "scseg: stopped by SIGTERM; the last checkpoint is kept: resume with --ckpt_path last",
            file=sys.stderr,
        )
        return 143
    return 0


_UNION_FAILED = "Does not validate against any"  # of the Union subtypes


def instantiation_error(message: str) -> str:
    """One line for a class that refused a value while LightningCLI built it, prefixed by
    the key where the message's first word is one of the class's arguments
    (``data.init_args.rotation: rotation must be ...``, ``model.scheduler: scheduler must
    be ...``). The data module's errors come wrapped in jsonargparse's listing of the
    Union's subtypes, with the whole Namespace; the model's come as they are."""
    import importlib
    import inspect
    import re

    from scseg.training import SegmentationModule

    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines or not lines[0].startswith(_UNION_FAILED):
        owner, prefix, text = SegmentationModule, "model", " ".join(lines)
    else:
        text = "; ".join(_union_errors(lines)) or lines[0]
        found = re.search(r"class_path='([\w.]+)'", message)
        module, _, name = found.group(1).rpartition(".") if found else ("", "", "")
        try:
            owner = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            owner = None
        prefix = "data.init_args"
        text += f" ({found.group(1)})" if found else ""
    first = re.match(r"\w+", text)
    params = inspect.signature(owner).parameters if owner is not None else {}
    if first and first.group(0) in params:
        return f"{prefix}.{first.group(0)}: {text}"
    return text if prefix == "model" else f"data: {text}"


def _one_line(message: str) -> str:
    """jsonargparse explains a wrong value over several lines, listing every type of a
    Union it tried; keep the key, the errors that are not about ``None``, and the value."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not any(ln.startswith(_UNION_FAILED) for ln in lines):
        return " ".join(lines)
    key = lines[0]
    errors = _union_errors(lines)
    given = [
        ln.removeprefix("Given value:").strip() for ln in lines if ln.startswith("Given value:")
    ]
    text = f"{key} {'; '.join(errors) or 'invalid value'}"
    return f"{text} (given: {given[0]})" if given and "NestedArg" not in given[0] else text


def _union_errors(lines: list[str]) -> list[str]:
    """The errors of jsonargparse's listing of the Union subtypes it tried (after
    ``Errors:``, one per ``- `` line, a nested explanation joined on), less those about
    ``None``."""
    errors: list[str] = []
    listing = False
    for ln in lines:
        if ln == "Errors:" or ln.startswith("Given value"):
            listing = ln == "Errors:"
        elif listing and ln.startswith("- "):
            errors.append(ln[2:])
        elif listing and errors:
            errors[-1] += " " + ln  # a nested explanation goes on over several lines
    return [e for e in errors if "NoneType" not in e]
