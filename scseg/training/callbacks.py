"""Callbacks: the end-of-run report, a checkpoint that resumes with ``--ckpt_path last``, and
atomic checkpoint writing."""

from __future__ import annotations

import os
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from rich.console import Console
from rich.table import Table


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that defaults to ``<default_root_dir>/checkpoints``.

    Lightning's default puts checkpoints under each logger version, so a new run cannot
    find the previous run's ``last.ckpt``; a fixed folder makes ``--ckpt_path last`` work.
    """

    def resolve_dirpath(self, trainer: pl.Trainer) -> None:
        if self.dirpath is None:
            self.dirpath = str(Path(trainer.default_root_dir) / "checkpoints")

    # Lightning 2.6 writes last.ckpt only in a step where a top-k checkpoint was saved, so
    # once the monitored score stops improving "last" falls behind and a resume would
    # repeat epochs. Here last.ckpt follows every save point.
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        due = not self._should_skip_saving_checkpoint(trainer)
        super().on_validation_end(trainer, pl_module)
        if due and not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        due = not self._should_skip_saving_checkpoint(trainer)
        super().on_train_epoch_end(trainer, pl_module)
        if due and self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def _refresh_last(self, trainer: pl.Trainer) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class MetricsReport(pl.Callback):
    """Prints the per-class validation Dice/IoU table and where checkpoints and logs are."""

    def __init__(self, stage: str = "val") -> None:
        self.stage = stage

    def table(self, trainer: pl.Trainer, stage: str) -> Table | None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        prefix = f"{stage}/dice/"
        names = [k[len(prefix) :] for k in metrics if k.startswith(prefix)]
        if not names:
            return None
        table = Table(title=f"{stage} metrics after {trainer.current_epoch} epochs")
        for column in ("class", "Dice", "IoU"):
            table.add_column(column, justify="left" if column == "class" else "right")
        for name in names:
            dice = metrics.get(f"{stage}/dice/{name}", float("nan"))
            iou = metrics.get(f"{stage}/iou/{name}", float("nan"))
            table.add_row(name, f"{dice:.4f}", f"{iou:.4f}")
        table.add_row(
            "mean",
            f"{metrics.get(f'{stage}/dice_mean', float('nan')):.4f}",
            f"{metrics.get(f'{stage}/iou_mean', float('nan')):.4f}",
            style="bold",
        )
        return table

    def _print(self, trainer: pl.Trainer, stage: str) -> None:
        log_dir = trainer.log_dir  # a collective under DDP: every process must ask
        if not trainer.is_global_zero:
            return
        console = Console()
        table = self.table(trainer, stage)
        if table is not None:
            console.print(table)
        callback = trainer.checkpoint_callback
        if stage == "val" and callback is not None:
            if callback.best_model_path:
                score = callback.best_model_score
                best = f" ({callback.monitor}={float(score):.4f})" if score is not None else ""
                console.print(f"best checkpoint: {callback.best_model_path}{best}")
            if callback.last_model_path:
                console.print(f"last checkpoint: {callback.last_model_path}")
        if log_dir:
            console.print(f"logs: {log_dir}")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._print(trainer, "val")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "validate":  # during fit, on_fit_end reports once
            self._print(trainer, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._print(trainer, "test")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file beside it, then renames it into place:
    a run killed while saving leaves the previous checkpoint intact, never a torn one."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
