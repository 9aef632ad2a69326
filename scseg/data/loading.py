"""The data modules' loaders: worker processes that start once per run, and training draws
(order and augmentation) that depend on the run's seed and the epoch alone.

Each training item is fetched as ``(index, seed)``: :class:`SeededSampler` draws the order
and one seed per item from ``(run seed, epoch)`` in the main process, and
:class:`SeededItems` seeds torch's RNG with it around that item (every random choice of
scseg's datasets and transforms is drawn from torch's RNG). What a batch holds is then the
same with 0, 1 or 12 workers, with workers that persist across epochs (nnU-Net keeps its
own alive; forking them again each epoch costs seconds on a GPU, where an epoch is a few
seconds) and after resuming from a checkpoint.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler

MAX_WORKERS = 12  # as nnU-Net's default augmentation processes


def default_workers(accelerated: bool = True) -> int:
    """Loader processes when a config leaves ``num_workers`` out: ``SCSEG_NUM_WORKERS``
    if set (as nnU-Net's ``nnUNet_n_proc_DA``); when the network trains on an accelerator,
    the cores this process may run on less one for the main process, at most
    :data:`MAX_WORKERS`; when it trains on the CPU, none: there a worker takes cores from
    the training threads (on two cores the 3D quickstart ran 25 % faster with none, the
    2D parcellation 11 %; benchmarks/results/train_throughput.md).

    Raises:
        ValueError: ``SCSEG_NUM_WORKERS`` that is not a whole number."""
    if value := os.environ.get("SCSEG_NUM_WORKERS", "").strip():
        if not value.isdigit():
            raise ValueError(f"SCSEG_NUM_WORKERS must be a whole number of loader processes "
                             f"(0 or more), got {value!r}")  # fmt: skip
        return int(value)
    if not accelerated:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(MAX_WORKERS, (cores or 1) - 1))


def draw_seed() -> int:
    """A run's loader seed, from torch's RNG (so ``seed_everything`` sets it)."""
    return int(torch.randint(2**31 - 1, ()))


class SeededSampler(DistributedSampler):
    """Indices with a seed each, ``(index, seed)``, both drawn from ``seed + epoch``
    (Lightning calls :meth:`set_epoch`); under distributed training each process takes its
    share of one order (a ``DistributedSampler``, so Lightning keeps it)."""

    def __init__(self, dataset: Dataset, seed: int, shuffle: bool = True,
                 num_replicas: int | None = None, rank: int | None = None) -> None:  # fmt: skip
        distributed = dist.is_available() and dist.is_initialized()
        world, me = (dist.get_world_size(), dist.get_rank()) if distributed else (1, 0)
        super().__init__(dataset, num_replicas=num_replicas or world,
                         rank=me if rank is None else rank, shuffle=shuffle, seed=seed)  # fmt: skip

    def __iter__(self):
        n = len(self.dataset)
        draws = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(n, generator=draws) if self.shuffle else torch.arange(n)
        seeds = torch.randint(2**31 - 1, (n,), generator=draws)
        if self.total_size > n:  # as DistributedSampler: repeat the first to divide evenly
            order = order.repeat(-(-self.total_size // n))[: self.total_size]
            seeds = seeds.repeat(-(-self.total_size // n))[: self.total_size]
        mine = slice(self.rank, self.total_size, self.num_replicas)
        return iter(zip(order[mine].tolist(), seeds[mine].tolist(), strict=True))


class SeededItems(Dataset):
    """``dataset``, fetched as ``(index, seed)``: torch's, numpy's and Python's RNGs are
    seeded with ``seed`` for the item and restored after it. A plain index (a sampler
    Lightning put in place, e.g. for ``overfit_batches``) draws from them as they stand."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            return self.dataset[key]
        index, seed = key
        kept = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                random.seed(seed)  # for any library that draws from these (albumentations'
                np.random.seed(seed)  # own generator is seeded from torch's in the dataset)
                return self.dataset[index]
        finally:
            random.setstate(kept[0])
            np.random.set_state(kept[1])


def loader_options(num_workers: int | None, accelerated: bool = True) -> dict:
    """What every loader of the data modules shares: ``num_workers`` (``None``:
    :func:`default_workers`, ``accelerated``: whether the network trains on a GPU), workers
    kept for the run, page-locked batches on CUDA, and a generator of its own for the
    workers' base seed, so that creating a loader's iterator never draws from the global
    RNG (a resumed run then draws as an uninterrupted one)."""
    workers = default_workers(accelerated) if num_workers is None else int(num_workers)
    return {
        "num_workers": workers,
        "persistent_workers": workers > 0,
        "pin_memory": torch.cuda.is_available(),  # copied to the GPU asynchronously
        "generator": torch.Generator().manual_seed(0),
    }
