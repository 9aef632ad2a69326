"""Loaders: workers that live for the run, and training batches that depend on the seed and
the epoch alone: the same with no worker as with two, and the same on every process's
share under distributed training (issue: "every step pays for work only")."""

from __future__ import annotations

import psutil
import pytest
import torch

from scseg.data import MSD3DDataModule, MSDSlicesDataModule
from scseg.data.loading import SeededSampler, default_workers, loader_options
from scseg.training import SegmentationModule

from ..conftest import short_fit, tumour_nrrd_msd


@pytest.fixture(scope="module")
def tumour(raw_samples, tmp_path_factory):
    return tumour_nrrd_msd(raw_samples, tmp_path_factory.mktemp("loading") / "tumour")


class _Recording(SegmentationModule):
    """Keeps each training batch's image sum and loss, and the loader processes alive at
    each epoch's first batch and at each validation."""

    def on_fit_start(self) -> None:
        self.sums, self.losses, self.workers = [], [], []
        self.others = _children()  # processes the test session had already started

    def training_step(self, batch, batch_idx):
        if batch_idx == 0:
            self.workers.append(_children() - self.others)
        self.sums.append(float(batch["image"].double().sum()))
        loss = super().training_step(batch, batch_idx)
        self.losses.append(float(loss.detach()))
        return loss

    def on_validation_epoch_end(self) -> None:
        self.workers.append(_children() - self.others)
        super().on_validation_epoch_end()


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _fit(data, tmp_path, workers: int) -> _Recording:
    data.hparams.num_workers = workers
    return short_fit(_Recording, data, tmp_path, epochs=3)


@pytest.mark.parametrize("kind", ["3d", "slices"])
def test_batches_are_the_same_with_any_number_of_workers_and_workers_persist(
    tumour, tmp_path, kind
) -> None:
    def data():
        if kind == "3d":
            return MSD3DDataModule(
                str(tumour), patch_size=(32, 32, 8), spacing=(1.5, 1.5, 6.5), batch_size=2,
                samples_per_volume=2, repeats=6, rotation=(0.3, 0.3, 0.3),
                intensity_augmentation="nnunet",
            )  # fmt: skip
        return MSDSlicesDataModule(str(tumour), patch_size=(32, 32), spacing=(1.5, 1.5, 6.5),
                                   batch_size=2, intensity_augmentation="nnunet",
                                   oblique_prob=0.5)  # fmt: skip

    alone = _fit(data(), tmp_path / "alone", workers=0)
    helped = _fit(data(), tmp_path / "helped", workers=2)
    assert len(alone.sums) == 9 and len(set(alone.sums)) == 9  # 3 epochs x 3 distinct batches
    assert helped.sums == alone.sums  # what the workers draw does not depend on them
    torch.testing.assert_close(helped.losses, alone.losses, rtol=0, atol=0)
    assert alone.workers == [set()] * 6
    # two training and two validation workers, started once: the same processes all run
    assert len(helped.workers[0]) == 2 and len(helped.workers[1]) == 4
    assert helped.workers[1:] == [helped.workers[1]] * 5


def test_each_process_takes_its_share_of_one_order() -> None:
    data = list(range(10))
    whole = list(SeededSampler(data, seed=3, num_replicas=1, rank=0))
    shares = [list(SeededSampler(data, seed=3, num_replicas=3, rank=r)) for r in range(3)]
    assert sorted(i for i, _ in whole) == data and len({s for _, s in whole}) == 10
    assert [len(s) for s in shares] == [4, 4, 4]  # padded by repeating, as DistributedSampler
    assert set().union(*map(set, shares)) == set(whole)  # the same (index, seed) pairs
    epoch = SeededSampler(data, seed=3, num_replicas=1, rank=0)
    epoch.set_epoch(1)
    assert list(epoch) != whole  # a new order and new seeds each epoch


def test_workers_default_to_the_cores_less_one_on_a_gpu_and_none_on_the_cpu(monkeypatch):
    monkeypatch.delenv("SCSEG_NUM_WORKERS")  # the test session's setting (conftest)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    assert default_workers(accelerated=True) == 12  # at most nnU-Net's default
    assert default_workers(accelerated=False) == 0  # they would take the training's cores
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    assert default_workers() == 1
    assert loader_options(None)["num_workers"] == 1 and loader_options(None)["persistent_workers"]
    assert not loader_options(0)["persistent_workers"]
    assert loader_options(None, accelerated=False)["num_workers"] == 0
    monkeypatch.setenv("SCSEG_NUM_WORKERS", "3")  # as nnU-Net's nnUNet_n_proc_DA
    assert loader_options(None)["num_workers"] == 3
    monkeypatch.setenv("SCSEG_NUM_WORKERS", "two")
    with pytest.raises(ValueError, match=r"SCSEG_NUM_WORKERS must be a whole number.*'two'"):
        default_workers()
