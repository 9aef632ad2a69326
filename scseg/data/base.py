"""What the 2D and 3D data modules share: a dataset folder, or a sample fetched into the
cache when no folder is given."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
from torch.utils.data import Dataset


class SegmentationDataModule(pl.LightningDataModule):
    """Base of the data modules: ``root`` or ``sample``, classes, channels, patch size."""

    spatial_dims: int

    def __init__(
        self,
        root: str | None,
        sample: str | None,
        classes: int,
        class_names: list[str] | None,
        in_channels: int,
        patch_size: Sequence[int],
        atlas: str | None = None,
        fold: int | None = None,
    ) -> None:
        super().__init__()
        if fold is not None and fold < 0:
            raise ValueError(f"fold must be 0 or more, got {fold}")
        self.fold = fold
        if root is None and sample is None:
            raise ValueError("give a dataset root or a sample name")
        if len(patch_size) != self.spatial_dims:
            raise ValueError(f"patch_size needs {self.spatial_dims} values, got {patch_size}")
        self.root = Path(root) if root else None
        self.sample = sample
        self.atlas = atlas
        self.classes = classes
        self.class_names = class_names
        self.in_channels = in_channels
        self.patch_size = tuple(patch_size)

    def loader_seed(self) -> int:
        """The seed of the training loader's order and augmentation
        (:mod:`scseg.data.loading`): drawn once per run from torch's RNG, the same on every
        process, and kept in checkpoints (:meth:`state_dict`), so a resumed run draws on."""
        if getattr(self, "_loader_seed", None) is None:
            from scseg.data.loading import draw_seed

            seed = draw_seed()
            self._loader_seed = self.trainer.strategy.broadcast(seed) if self.trainer else seed
        return self._loader_seed

    def training_sampler(self, dataset):
        """:class:`~scseg.data.loading.SeededSampler` of ``dataset`` with the run's seed, at
        the trainer's epoch: Lightning sets the epoch after it has started the loader, and
        workers begin fetching at once, so a resumed run's first epoch needs it now."""
        from scseg.data.loading import SeededSampler

        sampler = SeededSampler(dataset, self.loader_seed())
        if self.trainer is not None:  # the epoch Lightning will set (a resumed one's, too)
            sampler.set_epoch(self.trainer.fit_loop.epoch_progress.current.processed)
        return sampler

    def loader_options(self) -> dict:
        """:func:`scseg.data.loading.loader_options` for this module's ``num_workers`` and
        the trainer's device (no trainer: a GPU if there is one)."""
        from lightning.pytorch.accelerators import CPUAccelerator

        from scseg.data.loading import loader_options

        if self.trainer is not None:
            accelerated = not isinstance(self.trainer.accelerator, CPUAccelerator)
        else:
            import torch

            accelerated = torch.cuda.is_available()
        return loader_options(self.hparams.num_workers, accelerated)

    def state_dict(self) -> dict:
        seed = getattr(self, "_loader_seed", None)
        return {} if seed is None else {"loader_seed": seed}

    def load_state_dict(self, state_dict: dict) -> None:
        if "loader_seed" in state_dict:
            self._loader_seed = int(state_dict["loader_seed"])

    def prepare_data(self) -> None:
        if self.root is None:
            from scseg.data.samples import prepare_sample

            native = getattr(self, "hparams", {}).get("native", 0)
            prepare_sample(self.sample, atlas=self.atlas, native=native)

    def dataset_root(self) -> Path:
        if self.root is not None:
            return self.root
        from scseg.data.samples import dataset_dir

        return dataset_dir(self.sample, atlas=self.atlas)


def read_split(root: Path, split_file: str, fold: int | None = None) -> dict[str, list[str]]:
    """Reads ``{"train": [...], "val": [...]}`` and checks that the two do not overlap.

    ``split_file`` is relative to ``root`` unless absolute. With ``fold`` K, train and val
    come from the file's ``folds[K]`` (``"folds": [{"train": [...], "val": [...]}, ...]``,
    as ``scseg plan --folds`` writes), and so does test.
    """
    path = root / split_file
    if not path.is_file():
        hint = " (scseg plan --data DIR writes one)" if split_file == "split.json" else ""
        raise FileNotFoundError(f"{path}: split file not found{hint}")
    try:
        split = json.loads(path.read_text())
        if fold is not None:
            folds = split.get("folds") or []
            if fold >= len(folds):
                have = f"folds 0..{len(folds) - 1}" if folds else "no folds"
                raise ValueError(f"{path}: fold {fold} asked, the file has {have}")
            split = {k: v for k, v in folds[fold].items() if k in ("train", "val")}
        train, val = list(split["train"]), list(split["val"])
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a split file with 'train' and 'val' lists ({err})") from None
    if overlap := sorted(set(train) & set(val)):
        raise ValueError(f"{path}: cases in both train and val: {overlap[:5]}")
    return {"train": train, "val": val, "test": list(split.get("test", val))}


def evaluation_sampler(dataset: Dataset):
    """Under distributed training, each case on exactly one process: the default sampler
    pads by repeating cases, which would count them twice in the metrics."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return None
    world = dist.get_world_size()
    if len(dataset) < world:
        # A process without data would skip the epoch-end metric sync and hang the others.
        warnings.warn(
            f"{len(dataset)} evaluation case(s) on {world} processes: Lightning's sampler "
            "repeats cases to give each process one, and repeated cases count twice in the "
            "metrics; validate on more cases or fewer processes for exact scores",
            stacklevel=2,
        )
        return None
    from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

    return UnrepeatedDistributedSampler(dataset, shuffle=False)
