"""The LightningCLI behind ``scseg fit|validate|test`` (:mod:`scseg.cli.train` runs it):
our checkpoint callback and its defaults, CSV and TensorBoard logs in one version folder,
a fold's own run folder, mixed precision on a GPU, atomic checkpoint writes."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from scseg.training.callbacks import AtomicCheckpointIO, EpochTimer, MetricsReport, RunCheckpoint


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
        if trainer.precision is None and torch.cuda.is_available():
            trainer.precision = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        if trainer.enable_progress_bar is not False:
            self.trainer_defaults["callbacks"] = [
                *self.trainer_defaults["callbacks"],
                RichProgressBar(leave=True),
            ]

    def instantiate_classes(self) -> None:
        # a class that refuses a value while it is built: name the key
        try:
            super().instantiate_classes()
        except ValueError as err:
            from scseg.cli.train import instantiation_error

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
