"""nnU-Net's default trainer with the budget of ``benchmarks/against_nnunet.py``.

Copied into nnU-Net's own trainer folder of the isolated environment (nnU-Net finds
trainers there by name). Everything but the budget is nnU-Net's default trainer:
``SCSEG_NNUNET_EPOCHS`` epochs of ``SCSEG_NNUNET_ITERATIONS`` training steps (nnU-Net: 1000
of 250), 5 validation steps per epoch (nnU-Net: 50; they only log a pseudo-Dice), and no
validation of the training folds after training, since the benchmark predicts its held-out
cases with ``nnUNetv2_predict`` itself.

With ``SCSEG_NNUNET_TIMING`` set to a file, each training epoch's step times (its
``train_step``) and the waits between them (its loader's ``next``, before the first one
too) are appended to that file as JSON lines, for ``benchmarks/train_throughput.py``.
"""

import json
import os
import time

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class nnUNetTrainer_scsegBudget(nnUNetTrainer):
    def __init__(
        self,
        plans: dict,
        configuration: str,
        fold: int,
        dataset_json: dict,
        device: torch.device = torch.device("cuda"),  # noqa: B008 (nnU-Net's signature)
    ):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = int(os.environ.get("SCSEG_NNUNET_EPOCHS", "1000"))
        self.num_iterations_per_epoch = int(os.environ.get("SCSEG_NNUNET_ITERATIONS", "250"))
        self.num_val_iterations_per_epoch = 5

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        """nnU-Net's, but mirroring (in training and at inference) only along the array axes
        in ``SCSEG_NNUNET_MIRROR_AXES`` ("0,1": as nnU-Net's ``nnUNetTrainer_onlyMirror01``)
        when it is set: a parcellation's left and right structures must not be swapped."""
        rotation, dummy_2d, initial_patch_size, mirror_axes = (
            super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        )
        if axes := os.environ.get("SCSEG_NNUNET_MIRROR_AXES"):
            mirror_axes = tuple(int(a) for a in axes.split(","))
            self.inference_allowed_mirroring_axes = mirror_axes
        return rotation, dummy_2d, initial_patch_size, mirror_axes

    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        self._epoch_start = self._last = time.perf_counter()
        self._steps, self._waits = [], []

    def train_step(self, batch: dict) -> dict:
        start = time.perf_counter()
        self._waits.append(start - self._last)
        out = super().train_step(batch)  # ends with the loss on the host: no work left queued
        self._last = time.perf_counter()
        self._steps.append(self._last - start)
        return out

    def on_train_epoch_end(self, train_outputs: list) -> None:
        if path := os.environ.get("SCSEG_NNUNET_TIMING"):
            record = {"wall_s": self._last - self._epoch_start, "steps": self._steps,
                      "waits": self._waits, "batch_size": self.batch_size,
                      "patch_size": list(self.configuration_manager.patch_size)}  # fmt: skip
            with open(path, "a") as f:
                f.write(json.dumps(record) + "\n")
        super().on_train_epoch_end(train_outputs)

    def perform_actual_validation(self, save_probabilities: bool = False):
        self.print_to_log_file("validation of the training folds skipped (scseg benchmark)")
