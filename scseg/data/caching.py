"""Where preprocessed volumes are kept between uses, and seeded random transforms on them.

MONAI's ``CacheDataset`` (memory) and ``PersistentDataset`` (disk) keep the deterministic
head of a transform chain; the random tail runs on every visit, seeded from torch's RNG.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from monai.data import CacheDataset, PersistentDataset
from monai.data.utils import pickle_hashing


class _SeededTransforms:
    """Random transforms seeded per item from torch's RNG.

    MONAI transforms keep their own random state, which ``seed_everything`` does not
    reach (and which only worker processes would re-seed); drawing each item's seed from
    torch makes runs reproducible and resumed runs identical to uninterrupted ones.
    """

    def _transform(self, index: int):
        self.transform.set_random_state(seed=int(torch.randint(2**31 - 1, ())))
        return super()._transform(index)


class SeededCacheDataset(_SeededTransforms, CacheDataset):
    """CacheDataset (preprocessed volumes in memory) with seeded random transforms."""


class SeededPersistentDataset(_SeededTransforms, PersistentDataset):
    """PersistentDataset (preprocessed volumes on disk) with seeded random transforms."""


def file_stamped_hash(item: dict) -> bytes:
    """The cache key of a case: its paths with each file's size and modification time, so
    a file replaced under the same name is preprocessed again."""
    stamps = {
        k: tuple((f, *_stat(f)) for f in (v if isinstance(v, list) else [v]))
        for k, v in item.items()
        if k in ("image", "label")
    }
    return pickle_hashing({**item, **stamps})


def _stat(path: str) -> tuple[int, int]:
    info = Path(path).stat()
    return info.st_size, info.st_mtime_ns


def preprocessed_cache_dir(cache_dir: str | None, settings: dict) -> Path:
    """``cache_dir`` (default ``<scseg cache>/preprocessed``) / a hash of the preprocessing
    settings: other spacings or normalisations never read each other's files."""
    if cache_dir is None:
        from scseg.data.samples import data_dir

        base = data_dir() / "preprocessed"
    else:
        base = Path(cache_dir)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return base / key


class Repeated(torch.utils.data.Dataset):
    """``dataset`` visited ``repeats`` times per epoch, each item loaded and cached once."""

    def __init__(self, dataset, repeats: int) -> None:
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        self.dataset, self.repeats = dataset, repeats

    def __len__(self) -> int:
        return len(self.dataset) * self.repeats

    def __getitem__(self, index: int):
        return self.dataset[index % len(self.dataset)]
