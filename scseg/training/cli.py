"""The LightningCLI behind ``scseg fit|validate|test`` (:mod:`scseg.cli.train` runs it):
our checkpoint callback and its defaults, CSV and TensorBoard logs in one version folder,
a fold's own run folder, mixed precision where the hardware has units for it, atomic
checkpoint writes, and a class's refusal while it is built as one line that names the key."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from scseg.training.callbacks import (
    AtomicCheckpointIO,
    EpochTimer,
    MetricsReport,
    RunCheckpoint,
    SteadyProgressBar,
)
from scseg.training.module import SegmentationModule


def default_precision(accelerator: str | None = "auto") -> str | None:
    """The precision of a run whose config names none: autocast where the hardware
    multiplies low-precision matrices natively. On a GPU bf16 where supported, else fp16;
    on a CPU with AMX tiles (bf16 matrix units) bf16, which halves a planned 3D step on two
    cores and trains as well (``benchmarks/results/train_throughput.md``); elsewhere
    ``None``: float32. ``--trainer.precision 32-true`` keeps float32 anywhere."""
    on_gpu = accelerator in (None, "auto", "gpu", "cuda") and torch.cuda.is_available()
    if on_gpu:
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if accelerator in (None, "auto", "cpu") and _cpu_has_bf16_tiles():
        return "bf16-mixed"
    return None


def _cpu_has_bf16_tiles() -> bool:
    found = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private in torch 2.x
    return bool(found and found())


def default_callbacks() -> list:
    """The callbacks every run gets: the end-of-run metrics table and epoch times."""
    return [MetricsReport(), EpochTimer()]


class SCSegCLI(LightningCLI):
    """LightningCLI with our checkpointing, loggers, report and AMP defaults."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(RunCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/dice_mean",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch{epoch:03d}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        trainer = config.trainer
        fold = getattr(config.data.init_args, "fold", None) if config.get("data") else None
        if fold is not None:  # each fold its own checkpoints and logs
            trainer.default_root_dir = str(Path(trainer.default_root_dir) / f"fold_{fold}")
        if trainer.precision is None:
            trainer.precision = default_precision(trainer.accelerator)
        if trainer.benchmark is None and not trainer.deterministic and torch.cuda.is_available():
            trainer.benchmark = True  # cuDNN picks its fastest kernels per shape (nnU-Net too)
        if trainer.enable_progress_bar is not False:
            self.trainer_defaults["callbacks"] = [
                *self.trainer_defaults["callbacks"],
                SteadyProgressBar(leave=True),
            ]

    def instantiate_classes(self) -> None:
        # a class that refuses a value while it is built: name the key
        try:
            super().instantiate_classes()
        except ValueError as err:
            raise ValueError(instantiation_error(str(err))) from None

    def instantiate_trainer(self, **kwargs):
        trainer = super().instantiate_trainer(**kwargs)
        root = Path(trainer.default_root_dir)
        if trainer.logger is None:
            csv = CSVLogger(root, name="logs")
            # One version folder for both, so a run's logs sit together.
            trainer.loggers = [csv, TensorBoardLogger(root, name="logs", version=csv.version)]
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, RunCheckpoint):
                callback.resolve_dirpath(trainer)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        return trainer


UNION_FAILED = "Does not validate against any"  # of the Union subtypes


def instantiation_error(message: str) -> str:
    """One line for a class that refused a value while LightningCLI built it, prefixed by
    the key where the message's first word is one of the class's arguments
    (``data.init_args.rotation: rotation must be ...``, ``model.scheduler: scheduler must
    be ...``). The data module's errors come wrapped in jsonargparse's listing of the
    Union's subtypes, with the whole Namespace; the model's come as they are."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines or not lines[0].startswith(UNION_FAILED):
        owner, prefix, text = SegmentationModule, "model", " ".join(lines)
    else:
        text = "; ".join(union_errors(lines)) or lines[0]
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


def union_errors(lines: list[str]) -> list[str]:
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
