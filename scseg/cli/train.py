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


def _one_line(message: str) -> str:
    """jsonargparse explains a wrong value over several lines, listing every type of a
    Union it tried; keep the key, the errors that are not about ``None``, and the value."""
    from scseg.training.cli import UNION_FAILED, union_errors  # torch: in the handler only

    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not any(ln.startswith(UNION_FAILED) for ln in lines):
        return " ".join(lines)
    key = lines[0]
    errors = union_errors(lines)
    given = [
        ln.removeprefix("Given value:").strip() for ln in lines if ln.startswith("Given value:")
    ]
    text = f"{key} {'; '.join(errors) or 'invalid value'}"
    return f"{text} (given: {given[0]})" if given and "NestedArg" not in given[0] else text
