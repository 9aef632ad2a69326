"""The optimiser and its learning-rate schedule, as :class:`~scseg.training.SegmentationModule`
configures them: AdamW or nnU-Net's SGD; cosine or poly decay over the run's epochs, after
an optional linear warm-up."""

from __future__ import annotations

from collections.abc import Iterable

import torch

SCHEDULERS = ("cosine", "poly", "none")
OPTIMIZERS = ("adamw", "sgd")
WARMUP_START = 0.1  # the warm-up's first epoch runs at this share of lr


def make_optimizer(name: str, groups: Iterable[dict], lr: float, weight_decay: float):
    """``"adamw"``, or ``"sgd"``: nnU-Net's SGD with Nesterov momentum 0.99."""
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.99, nesterov=True,
                               weight_decay=weight_decay)  # fmt: skip
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)


def make_scheduler(optimizer, name: str, epochs: int, warmup_epochs: int = 0):
    """The schedule over ``epochs`` (stepped once an epoch): ``"cosine"`` or ``"poly"``
    (exponent 0.9) to zero at the end; with ``warmup_epochs``, first a linear rise from
    :data:`WARMUP_START` x lr to lr over that many epochs, the decay over the rest.
    ``None`` for ``"none"``."""
    if name == "none":
        return None
    warmup = min(max(int(warmup_epochs), 0), epochs - 1)
    rest = epochs - warmup
    if name == "cosine":
        decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=rest)
    else:
        decay = torch.optim.lr_scheduler.PolynomialLR(optimizer, rest, power=0.9)
    if not warmup:
        return decay
    rise = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=WARMUP_START,
                                             total_iters=warmup)  # fmt: skip
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [rise, decay], milestones=[warmup])
