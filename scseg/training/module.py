"""One LightningModule for 2D and 3D segmentation with recalibrated U-Nets."""

from __future__ import annotations

from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from monai.data import MetaTensor

from scseg import __version__
from scseg.models import MODELS, create_model, to_channels_last
from scseg.models.slabs import (
    SlabStream,
    pad_predict,
    slicewise_slabs,
    sliding_window_slabs,
    window_batch_size,
)
from scseg.training.losses import RegionLoss, SegmentationLoss, supervised_loss
from scseg.training.metrics import SegmentationMetrics
from scseg.training.rng import rng_state, set_rng_state
from scseg.training.schedules import OPTIMIZERS, SCHEDULERS, make_optimizer, make_scheduler

# classes x voxels of logits scored at a time in whole-volume validation (float32: 32 MiB)
PIECE_ELEMENTS = 1 << 23
# training steps between looks at whether the loss stayed finite: a look waits for the
# device to finish, so it is not taken every step (and always before a validation or a
# checkpoint, which would otherwise keep non-finite weights)
FINITE_CHECK_STEPS = 25


class SegmentationModule(pl.LightningModule):
    """Builds the network from plain hyperparameters and trains it.

    Args:
        arch: a model name from :func:`scseg.list_models`.
        spatial_dims, in_channels, classes, attention: see :func:`scseg.create_model`.
        model_options: the model's other options (``encoder_name``, ``channels``,
            ``deep_supervision``, ...).
        loss: ``"dicece"``, ``"dice"``, ``"ce"`` or ``"focal"``.
        include_background: count class 0 in the Dice loss and the metric means.
        ignore_index: label value that counts for nothing in loss and metrics: voxels
            nobody annotated (``dataset.json``'s ``labels.ignore``; :mod:`scseg.data.labels`).
        multilabel: each output channel is one region with a sigmoid, trained with
            per-region Dice + binary cross-entropy, so regions may overlap; targets are
            one mask per region (the data module's, from ``dataset.json`` regions).
        ignore_empty: metric convention for cases without a class (see
            :mod:`scseg.training.metrics`).
        lr, weight_decay: the optimizer's settings.
        optimizer: ``"adamw"``, or ``"sgd"``: nnU-Net's SGD with Nesterov momentum 0.99
            (nnU-Net pairs it with lr 0.01, weight decay 3e-5 and the ``"poly"`` schedule).
        scheduler: ``"cosine"`` or ``"poly"`` (nnU-Net, exponent 0.9) over the trainer's
            ``max_epochs``, or ``"none"``; after ``warmup_epochs`` of a linear rise from a
            tenth of ``lr`` (:mod:`scseg.training.schedules`).
        roi_size: sliding-window size for 3D validation/test (default: the data module's
            training patch size); ``sw_batch_size`` (at most: lowered where one batch of
            window logits would pass 256 MiB) and ``sw_overlap`` tune it.
        channels_last: keep activations channels-last (NHWC/NDHWC), the layout oneDNN and
            tensor cores prefer: the 2D resnet34 U-Net's training step about x1.3 faster on
            two CPU cores (benchmarks/results/attention_overhead_channels_last.md); slower
            for 3D there.
        compile: compile the network with ``torch.compile`` (in place: checkpoints keep
            their keys). It pays off over long runs: on two CPU cores the 2D scSE U-Net's
            training step is x1.13 faster after about 40 s of compiling
            (benchmarks/results/compile.md).
        init_from: a trained scseg checkpoint or package to start from (fine-tuning):
            every tensor whose name and shape match is loaded, the heads are re-initialised
            when the classes differ, the first convolution adapted when the input channels
            do (:mod:`scseg.training.finetune`); a table says what was loaded. Read at
            setup, so a resumed run needs it too (its weights are then overwritten).
        freeze_encoder_epochs: keep the encoder's weights (and its normalisation
            statistics) fixed for this many first epochs, so the new head and decoder
            settle before the loaded features move.
        init_lr_scale: learning rate of the tensors ``init_from`` loaded, as a fraction
            of ``lr`` (e.g. 0.1); the others train at ``lr``.
    """

    def __init__(
        self,
        arch: str = "smp_unet",
        spatial_dims: int = 2,
        in_channels: int = 1,
        classes: int = 2,
        attention: str = "scse",
        model_options: dict | None = None,
        loss: str = "dicece",
        include_background: bool = False,
        ignore_index: int | None = None,
        multilabel: bool = False,
        ignore_empty: bool = True,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        optimizer: str = "adamw",
        scheduler: str = "cosine",
        warmup_epochs: int = 0,
        roi_size: list[int] | None = None,
        sw_batch_size: int = 4,
        sw_overlap: float = 0.5,
        channels_last: bool = False,
        compile: bool = False,
        init_from: str | None = None,
        freeze_encoder_epochs: int = 0,
        init_lr_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {scheduler!r}")
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        if freeze_encoder_epochs < 0:
            raise ValueError(f"freeze_encoder_epochs must be >= 0, got {freeze_encoder_epochs}")
        if init_lr_scale < 0.0:
            raise ValueError(f"init_lr_scale must be >= 0, got {init_lr_scale}")
        if multilabel and ignore_index is not None:
            raise ValueError("multilabel regions with ignore_index are not supported")
        self.save_hyperparameters()
        # Every architecture option, defaults included, goes into checkpoints: a model keeps
        # loading after a default changes.
        self.architecture = resolved_architecture(
            arch, spatial_dims, in_channels, classes, attention, model_options
        )
        self.net = create_model(arch, **self.architecture)
        if channels_last:
            to_channels_last(self.net, spatial_dims)
        if compile:
            self.net.compile()
        if multilabel:
            self.loss = RegionLoss(loss)
        else:
            self.loss = SegmentationLoss(loss, include_background, ignore_index)
        options = {
            "include_background": include_background,
            "ignore_empty": ignore_empty,
            "ignore_index": ignore_index,
            "multilabel": multilabel,
        }
        # Class names come from the data module (see setup), so they live in one place.
        self.val_metrics = SegmentationMetrics(classes, None, **options)
        self.test_metrics = SegmentationMetrics(classes, None, **options)
        # What inference needs from the data module (patch size, preprocessing, class
        # names): plain values, saved as checkpoint["scseg"] (see on_save_checkpoint).
        self.data_info: dict = {}
        # The last epoch's per-class rows by stage, for the report (MetricsReport).
        self.class_tables: dict[str, list[dict]] = {}
        # The latest validation of the training run (not Lightning's sanity check, which
        # scores the untrained network), with the epoch and step it was run at.
        self.val_scores: dict | None = None
        self.init_report = None
        if init_from is not None:
            from scseg.training.finetune import init_from as load_initial

            self.init_report = load_initial(self.net, init_from, arch, spatial_dims,
                                            in_channels, classes)  # fmt: skip

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if datamodule is None:
            return
        hp = self.hparams
        for key in ("spatial_dims", "in_channels", "classes"):
            theirs = getattr(datamodule, key, None)
            if theirs is not None and theirs != hp[key]:
                raise ValueError(
                    f"model.{key}={hp[key]} but data.{key}={theirs}: make them agree in the config"
                )
        for key, what in (("ignore_index", "the ignore label"), ("multilabel", "regions")):
            theirs = getattr(datamodule, key, None) or None
            if theirs != (hp.get(key) or None):
                raise ValueError(
                    f"model.{key}={hp.get(key)} but the data's dataset.json gives {theirs} "
                    f"({what}): set model.{key}: {theirs} in the config"
                )
        theirs = bool(getattr(datamodule, "hparams", {}).get("label_prior", False))
        if theirs != bool(self.architecture.get("label_prior")):
            raise ValueError(
                f"data.label_prior={theirs} but model.model_options.label_prior="
                f"{bool(self.architecture.get('label_prior'))}: make them agree in the config"
            )
        names = getattr(datamodule, "class_names", None)
        if names:
            if len(names) != hp.classes:
                raise ValueError(f"{len(names)} class names for {hp.classes} classes: {names}")
            self.val_metrics.class_names = self.test_metrics.class_names = list(names)
        if hasattr(datamodule, "info"):
            self.data_info = datamodule.info()
        if self.init_report is not None:
            from scseg.training.finetune import match_heads

            match_heads(self.net, self.init_report, list(names) if names else None)
        if self.init_report is not None and self.trainer.is_global_zero and stage == "fit":
            from scseg.training.finetune import print_report

            print_report(self.init_report, self.net.state_dict())

    def on_train_epoch_start(self) -> None:
        epochs = self.hparams.freeze_encoder_epochs
        if not epochs:
            return
        encoder = getattr(self.net, "encoder", None)
        if encoder is None:
            raise ValueError(f"freeze_encoder_epochs: {self.hparams.arch} has no encoder to freeze")
        frozen = self.current_epoch < epochs
        encoder.requires_grad_(not frozen)
        encoder.train(not frozen)  # normalisation statistics stay as loaded

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Plain values only, so checkpoints stay loadable with weights_only=True. Not in
        # hparams: LightningCLI feeds those back to __init__ when resuming.
        checkpoint["scseg"] = {
            "architecture": self.architecture,
            "data_info": self.data_info,
            "version": __version__,
            "rng": rng_state(),
            # what a model card reports: the latest validation, per class, and when it ran
            "scores": self.val_scores or {"val": []},
            "data_module": _data_module_name(self),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        extra = checkpoint.get("scseg", {})
        self.data_info = dict(extra.get("data_info", {}))
        scores = extra.get("scores") or {}
        # older checkpoints may hold the sanity check's scores; only marked ones carry over
        self.val_scores = scores if scores.get("validated") else None
        # Resuming continues the random streams (shuffling, augmentation seeds), so a resumed
        # run ends as an uninterrupted one would. The first training iterator is created
        # right after the sanity check, which draws from the RNG too (each DataLoader
        # iterator does): restore now, and again when the sanity check ends.
        self._resumed_rng = extra.get("rng")
        if self._resumed_rng is not None:
            set_rng_state(self._resumed_rng)

    def on_sanity_check_end(self) -> None:
        if getattr(self, "_resumed_rng", None) is not None:
            set_rng_state(self._resumed_rng)

    def on_train_start(self) -> None:
        self._resumed_rng = None
        self._finite, self._checked_step = None, self.global_step

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.global_step - getattr(self, "_checked_step", 0) >= FINITE_CHECK_STEPS:
            self.check_finite_loss()

    def on_validation_epoch_start(self) -> None:
        self.check_finite_loss()

    def on_train_epoch_end(self) -> None:
        self.check_finite_loss()  # before the checkpoint callbacks save

    def check_finite_loss(self) -> None:
        """Raises ``FloatingPointError`` if a training loss since the last look was NaN or
        infinite, naming the steps; the look waits for the device."""
        finite, start = getattr(self, "_finite", None), getattr(self, "_checked_step", 0)
        self._finite, self._checked_step = None, self.global_step
        if finite is not None and not bool(finite):
            raise FloatingPointError(
                f"non-finite training loss at epoch {self.current_epoch}, between steps "
                f"{start} and {self.global_step}: lower model.lr, set "
                "trainer.gradient_clip_val (e.g. 1.0), or check the data (data.validate)"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def logit_slabs(self, x: torch.Tensor) -> SlabStream:
        """A volume's logits as a stream of slabs (:mod:`scseg.models.slabs`): sliding
        windows for a 3D network, or a 2D network slice by slice across the data module's
        ``slice_axis`` (one volume ``(1, C, X, Y, Z)``)."""
        if self.hparams.spatial_dims == 2 and x.ndim == 5:
            axis = self.data_info.get("slice_axis")
            if axis is None:
                raise ValueError("a volume for a 2D model needs data_info['slice_axis']")
            patch = self.data_info.get("patch_size")
            return slicewise_slabs(self.net, x, axis, self.hparams.sw_batch_size, patch=patch)
        if self.hparams.spatial_dims == 3:
            roi = self._roi_size()
            windows = window_batch_size(self.hparams.sw_batch_size, self.hparams.classes, roi)
            return sliding_window_slabs(x, roi, windows, self.net, self.hparams.sw_overlap)
        raise ValueError(f"logit_slabs takes volumes, got shape {tuple(x.shape)}")

    def _roi_size(self) -> Sequence[int]:
        if self.hparams.roi_size:
            return self.hparams.roi_size
        if self.data_info.get("patch_size"):
            return self.data_info["patch_size"]
        raise ValueError("no roi_size for sliding-window inference: set model.roi_size")

    def _shared_step(self, batch: dict, stage: str) -> torch.Tensor:
        # plain tensors: a MetaTensor (from a data module whose transforms track metadata)
        # would send every op of the network and the loss through its __torch_function__
        x, y = (v.as_tensor() if isinstance(v, MetaTensor) else v
                for v in (batch["image"], batch["label"]))  # fmt: skip
        if stage == "train":
            loss = supervised_loss(self.loss, self.net(x), y)
            # a device-side record, read every FINITE_CHECK_STEPS (check_finite_loss)
            finite = torch.isfinite(loss.detach())
            self._finite = (
                finite if getattr(self, "_finite", None) is None else self._finite & finite
            )
            self.log("train/loss", loss, prog_bar=True, batch_size=x.shape[0])
            return loss
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        if x.ndim == 4:  # 2D images: small enough to score whole
            # an image smaller than the patch: centred in it, as training padded it
            logits = pad_predict(self.net, x, self.data_info.get("patch_size"))
            loss = self.loss(logits, y)
            metrics.update(self._decide(logits), y)
        else:
            loss = self._volume_loss_and_update(x, y, metrics)
        self.log(f"{stage}/loss", loss, batch_size=x.shape[0], sync_dist=True)
        return loss

    def _volume_loss_and_update(
        self, x: torch.Tensor, y: torch.Tensor, metrics: SegmentationMetrics
    ) -> torch.Tensor:
        """Scores whole volumes one slab of logits at a time: the argmax and the loss's
        sums are taken from each slab as it comes, so memory grows with voxels plus one
        slab of classes x voxels, not with classes x voxels (137 classes on a 1 mm brain:
        benchmarks/results/predict_memory.md)."""
        multilabel = self.hparams.get("multilabel", False)
        y = y[:, 0] if y.ndim == x.ndim and not multilabel else y
        kind = torch.bool if multilabel else torch.long
        labels = torch.empty(y.shape, dtype=kind, device=y.device)
        lead = 2 if multilabel else 1  # axes before the spatial ones in y and labels
        sums: list[dict[str, torch.Tensor]] = []
        for b in range(x.shape[0]):
            case: dict[str, torch.Tensor] = {}
            for axis, start, stop, slab in self.logit_slabs(x[b : b + 1]):
                # the loss's temporaries are a few times their input: take a slab in pieces
                plane = slab.numel() // max(1, slab.shape[axis + 2])
                step = max(1, PIECE_ELEMENTS // max(1, plane))
                for low in range(start, stop, step):
                    high = min(low + step, stop)
                    index = [slice(b, b + 1)] + [slice(None)] * (lead + 2)
                    index[axis + lead] = slice(low, high)
                    piece = slab.narrow(axis + 2, low - start, high - low)
                    labels[tuple(index)] = self._decide(piece)
                    for key, value in self.loss.sums(piece, y[tuple(index)]).items():
                        case[key] = case[key] + value if key in case else value
            sums.append(case)
        metrics.update(labels, y)
        return self.loss.from_sums({k: torch.cat([c[k] for c in sums]) for k in sums[0]})

    def _decide(self, logits: torch.Tensor) -> torch.Tensor:
        """Label map ``(B, *spatial)`` by argmax, or region masks (logit above 0)."""
        return logits > 0 if self.hparams.get("multilabel", False) else logits.argmax(1)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "test")

    def _log_metrics(self, metrics: SegmentationMetrics, stage: str) -> None:
        if self._trainer is not None and self.trainer.sanity_checking:
            metrics.reset()  # the untrained network's scores: no table, no card
            return
        values = {f"{stage}/{k}": v for k, v in metrics.compute().items()}
        self.class_tables[stage] = metrics.last_table
        if stage == "val":
            self.val_scores = {"validated": True, "epoch": self.current_epoch,
                               "global_step": self.global_step,
                               "val": list(metrics.last_table)}  # fmt: skip
        self.log(f"{stage}/dice_mean", values.pop(f"{stage}/dice_mean"), prog_bar=True)
        self.log_dict(values)
        metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics, "val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics, "test")

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = make_optimizer(hp.get("optimizer", "adamw"), self._parameter_groups(), hp.lr,
                                   hp.weight_decay)  # fmt: skip
        epochs = self.trainer.max_epochs if self._trainer else None
        if hp.scheduler == "none" or not epochs or epochs < 1:
            return optimizer
        scheduler = make_scheduler(optimizer, hp.scheduler, epochs, hp.get("warmup_epochs", 0))
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

    def _parameter_groups(self) -> list[dict]:
        """One group at ``lr``; with ``init_lr_scale`` != 1, the tensors ``init_from``
        loaded in a second group at ``lr * init_lr_scale``."""
        scale = self.hparams.init_lr_scale
        if self.init_report is None or scale == 1.0:
            return [{"params": list(self.parameters())}]
        loaded = {f"net.{name}" for name in self.init_report.taken}
        named = list(self.named_parameters())
        return [
            {"params": [p for n, p in named if n not in loaded]},
            {"params": [p for n, p in named if n in loaded], "lr": self.hparams.lr * scale},
        ]


def resolved_architecture(
    arch: str, spatial_dims: int, in_channels: int, classes: int, attention: str,
    model_options: dict | None,
) -> dict:  # fmt: skip
    """Every option of model ``arch``, defaults filled in, plus ``label_prior`` and
    ``prior_strength`` when set (not options of the factories: :func:`scseg.create_model`
    wraps the network)."""
    options = dict(model_options or {})
    label_prior = bool(options.pop("label_prior", False))
    strength = options.pop("prior_strength", None)
    if strength is not None and not label_prior:
        raise ValueError("model_options.prior_strength needs model_options.label_prior: true")
    resolved = MODELS.resolved(arch, spatial_dims=spatial_dims, in_channels=in_channels,
                               classes=classes, attention=attention, **options)  # fmt: skip
    if not label_prior:
        return resolved
    return {**resolved, "label_prior": True,
            **({"prior_strength": float(strength)} if strength is not None else {})}  # fmt: skip


def _data_module_name(module: pl.LightningModule) -> str | None:
    datamodule = getattr(module.trainer, "datamodule", None) if module._trainer else None
    return (
        None if datamodule is None else f"{type(datamodule).__module__}.{type(datamodule).__name__}"
    )
