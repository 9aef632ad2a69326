"""Callbacks: the end-of-run report, a checkpoint that resumes with ``--ckpt_path last``, and
atomic checkpoint writing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
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


class SteadyProgressBar(RichProgressBar):
    """Rich's progress bar, whose metrics (the training loss) are read every
    ``metrics_every`` training batches and at an epoch's last, not after every one: reading
    a logged tensor waits for the device to finish the step, and the bar would otherwise
    read it once a batch."""

    def __init__(self, metrics_every: int = 10, leave: bool = True) -> None:
        super().__init__(leave=leave)
        self.metrics_every, self._read = metrics_every, True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        done = batch_idx + 1
        self._read = done % self.metrics_every == 0 or done >= self.total_train_batches
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self._read = True

    def _update_metrics(self, trainer, pl_module) -> None:
        if self._read:
            super()._update_metrics(trainer, pl_module)


class EpochTimer(pl.Callback):
    """Logs ``time/train_epoch_s``: the wall-clock seconds of each training epoch (data
    loading and optimisation, not validation), for comparing variants at equal budget."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if getattr(self, "_start", None) is not None:
            pl_module.log("time/train_epoch_s", time.perf_counter() - self._start)


class MetricsReport(pl.Callback):
    """Prints the per-class validation Dice/IoU table and where checkpoints and logs are.

    Up to ``full_table`` classes are listed whole. Past that (whole-brain parcellations have
    100+) the printout keeps to the ``rows`` best, worst and smallest classes (by voxels in
    the ground truth), and every class goes to ``<log dir>/<stage>_per_class.csv``.
    """

    def __init__(self, stage: str = "val", full_table: int = 24, rows: int = 5) -> None:
        self.stage, self.full_table, self.rows = stage, full_table, rows

    @staticmethod
    def _rows(trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> list[dict]:
        rows = getattr(pl_module, "class_tables", {}).get(stage)
        if rows:
            return rows
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        prefix = f"{stage}/dice/"
        names = [k[len(prefix) :] for k in metrics if k.startswith(prefix)]
        return [{"class": n, "dice": metrics[f"{prefix}{n}"],
                 "iou": metrics.get(f"{stage}/iou/{n}", float("nan"))} for n in names]  # fmt: skip

    def table(
        self, trainer: pl.Trainer, stage: str, pl_module: pl.LightningModule | None = None
    ) -> Table | None:
        rows = self._rows(trainer, pl_module, stage)
        if not rows:
            return None
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        title = f"{stage} metrics after {trainer.current_epoch} epochs"
        sized = "voxels" in rows[0]
        columns = ["class", "Dice", "IoU", *(["voxels"] if sized else [])]
        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="left" if column == "class" else "right")

        def add(row: dict, style: str | None = None) -> None:
            cells = [row["class"], f"{row['dice']:.4f}", f"{row['iou']:.4f}"]
            table.add_row(*cells, *([f"{row['voxels']:,}"] if sized else []), style=style)

        if len(rows) <= self.full_table:
            for row in rows:
                add(row)
        else:
            scored = [r for r in rows if r["dice"] == r["dice"]]  # NaN: no case had the class
            by_dice = sorted(scored, key=lambda r: -r["dice"])
            groups = [(f"best {self.rows}", by_dice[: self.rows]),
                      (f"worst {self.rows}", by_dice[-self.rows :][::-1])]  # fmt: skip
            if sized:
                smallest = sorted(scored, key=lambda r: r["voxels"])[: self.rows]
                groups.append((f"smallest {self.rows} (by voxels)", smallest))
            table.title = f"{title}: {len(rows)} classes ({len(scored)} scored)"
            for label, group in groups:
                table.add_row(f"[italic]{label}[/italic]", *[""] * (len(columns) - 1))
                for row in group:
                    add(row)
        mean = [f"{metrics.get(f'{stage}/{k}_mean', float('nan')):.4f}" for k in ("dice", "iou")]
        table.add_row("mean", *mean, *([""] if sized else []), style="bold")
        table.caption = _scored_on(pl_module)
        return table

    @staticmethod
    def write_csv(rows: list[dict], path: Path) -> Path:
        """Every class's row, for tables too long to print."""
        import csv

        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return path

    def _print(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        log_dir = trainer.log_dir  # a collective under DDP: every process must ask
        if not trainer.is_global_zero:
            return
        console = Console()
        table = self.table(trainer, stage, pl_module)
        if table is not None:
            console.print(table)
        rows = getattr(pl_module, "class_tables", {}).get(stage)
        if rows and log_dir:
            path = self.write_csv(rows, Path(log_dir) / f"{stage}_per_class.csv")
            console.print(f"per-class scores: {path}")
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
        self._print(trainer, pl_module, "val")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "validate":  # during fit, on_fit_end reports once
            self._print(trainer, pl_module, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._print(trainer, pl_module, "test")


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


def _scored_on(module: pl.LightningModule | None) -> str | None:
    """What the table scores, where it is not every voxel's one class."""
    hp = getattr(module, "hparams", {}) if module is not None else {}
    if hp.get("ignore_index") is not None:
        return f"scored on annotated voxels only (label {hp['ignore_index']}: not annotated)"
    if hp.get("multilabel"):
        return "regions that may overlap, each scored on its own (sigmoid > 0.5)"
    return None
