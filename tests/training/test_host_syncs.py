"""What a training step reads back from the device, and the precision it runs at: the
progress bar reads the logged metrics at a rate, not every batch; the loss is checked for
NaN/Inf every few steps and always before a validation or a checkpoint; bf16 autocast
where the hardware has bf16 units (issue: "every step pays for work only")."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from scseg.training import module as module_file
from scseg.training.callbacks import SteadyProgressBar


class _Logging(BoringModel):
    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        self.log("train/loss", out["loss"], prog_bar=True)
        return out


def test_progress_bar_reads_metrics_every_n_batches(tmp_path, monkeypatch) -> None:
    reads = []
    real = SteadyProgressBar.get_metrics

    def counted(self, trainer, module):
        reads.append(trainer.global_step)
        return real(self, trainer, module)

    monkeypatch.setattr(SteadyProgressBar, "get_metrics", counted)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=12, limit_val_batches=0,
                         callbacks=[SteadyProgressBar(metrics_every=5)], logger=False,
                         enable_checkpointing=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(_Logging())
    during = [s for s in reads if s < 12]
    assert during == [5, 10]  # after batches 5 and 10; then the epoch's last, 12
    assert 12 in reads


def test_non_finite_loss_is_caught_within_the_check_interval(tmp_path, monkeypatch) -> None:
    """A NaN from step 5 on stops the run at the next look (every 4 steps here), naming the
    steps, before any checkpoint is written."""
    monkeypatch.setattr(module_file, "FINITE_CHECK_STEPS", 4)
    model = module_file.SegmentationModule(
        arch="unet", spatial_dims=2, in_channels=1, classes=2, model_options={"channels": [4, 8]}
    )
    steps = []
    real = module_file.supervised_loss

    def loss(*args):
        steps.append(len(steps))
        value = real(*args)
        return value * float("nan") if len(steps) > 5 else value

    monkeypatch.setattr(module_file, "supervised_loss", loss)
    data = [{"image": torch.randn(1, 32, 32), "label": torch.randint(0, 2, (1, 32, 32))}] * 40
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    trainer = pl.Trainer(max_epochs=1, logger=False, default_root_dir=tmp_path,
                         enable_progress_bar=False, limit_val_batches=0)  # fmt: skip
    try:
        trainer.fit(model, train_dataloaders=loader)
    except FloatingPointError as err:
        assert "between steps 4 and 8" in str(err) and "gradient_clip_val" in str(err)
    else:
        raise AssertionError("a NaN loss went unnoticed")
    assert len(steps) == 8  # caught at the look after step 8, not at the epoch's end (20)
    assert not list(tmp_path.rglob("*.ckpt"))


def test_default_precision_follows_the_hardware(monkeypatch) -> None:
    from scseg.training import cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(cli, "_cpu_has_bf16_tiles", lambda: True)
    assert cli.default_precision() == "bf16-mixed"  # a CPU with AMX
    assert cli.default_precision("cpu") == "bf16-mixed"
    monkeypatch.setattr(cli, "_cpu_has_bf16_tiles", lambda: False)
    assert cli.default_precision() is None  # float32 elsewhere
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert cli.default_precision() == "16-mixed"
    assert cli.default_precision("cpu") is None  # a GPU machine told to train on its CPU
