"""nnU-Net's default trainer with the budget of ``benchmarks/against_nnunet.py``.

Copied into nnU-Net's own trainer folder of the isolated environment (nnU-Net finds
trainers there by name). Everything but the budget is nnU-Net's default trainer:
``SCSEG_NNUNET_EPOCHS`` epochs of ``SCSEG_NNUNET_ITERATIONS`` training steps (nnU-Net: 1000
of 250), 5 validation steps per epoch (nnU-Net: 50; they only log a pseudo-Dice), and no
validation of the training folds after training, since the benchmark predicts its held-out
cases with ``nnUNetv2_predict`` itself.
"""

import os

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

    def perform_actual_validation(self, save_probabilities: bool = False):
        self.print_to_log_file("validation of the training folds skipped (scseg benchmark)")
