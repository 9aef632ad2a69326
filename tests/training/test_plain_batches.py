"""Batches reach the steps as plain tensors, with the same values and the same losses as
when the random transforms tracked metadata (issue: "every step pays for work only")."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta

from scseg.data import MSD3DDataModule, MSDSlicesDataModule
from scseg.training import SegmentationModule

from ..conftest import short_fit, tumour_nrrd_msd


@pytest.fixture(scope="module")
def tumour(raw_samples, tmp_path_factory):
    return tumour_nrrd_msd(raw_samples, tmp_path_factory.mktemp("plain") / "tumour")


OPTIONS = dict(patch_size=(32, 32, 8), spacing=(1.5, 1.5, 6.5), samples_per_volume=2,
               batch_size=2, rotation=(0.3, 0.3, 0.3), zoom=(0.9, 1.1), spatial_prob=1.0,
               intensity_augmentation="nnunet", repeats=6)  # fmt: skip


def _tracked(monkeypatch) -> None:
    """The random transforms as they were: tracking metadata (MONAI's default)."""
    for module in ("scseg.data.volumes3d", "scseg.data.slices"):
        monkeypatch.setattr(f"{module}.untracked", lambda transforms: transforms)


def _items(dm, count: int = 4) -> list[dict]:
    torch.manual_seed(0)
    out = []
    for i in range(count):
        item = dm.train_set[i]
        out += item if isinstance(item, list) else [item]
    return out


@pytest.mark.parametrize("kind", ["3d", "slices"])
def test_random_transforms_give_plain_tensors_with_the_same_values(tumour, monkeypatch, kind):
    def module():
        if kind == "3d":
            dm = MSD3DDataModule(str(tumour), **OPTIONS)
        else:
            dm = MSDSlicesDataModule(str(tumour), patch_size=(32, 32), spacing=(1.5, 1.5, 6.5),
                                     batch_size=2, intensity_augmentation="nnunet")  # fmt: skip
        dm.setup("fit")
        return dm

    plain = _items(module())
    assert get_track_meta()  # the process's setting is back as it was
    with monkeypatch.context() as m:
        _tracked(m)
        tracked = _items(module())
    assert all(type(x["image"]) is torch.Tensor for x in plain)
    assert all(isinstance(x["image"], MetaTensor) for x in tracked)  # what it was before
    for ours, theirs in zip(plain, tracked, strict=True):
        for key in ("image", "label"):
            assert torch.equal(ours[key], theirs[key].as_tensor())


class _Recording(SegmentationModule):
    def training_step(self, batch, batch_idx):
        self.seen = [*getattr(self, "seen", []), type(batch["image"])]
        loss = super().training_step(batch, batch_idx)
        self.losses = [*getattr(self, "losses", []), float(loss)]
        return loss

    def validation_step(self, batch, batch_idx):
        self.seen = [*getattr(self, "seen", []), type(batch["image"])]
        return super().validation_step(batch, batch_idx)


def _fit(tumour, tmp_path) -> _Recording:
    return short_fit(_Recording, MSD3DDataModule(str(tumour), **OPTIONS), tmp_path, epochs=2)


def test_steps_see_plain_tensors_and_the_same_loss_curve(tumour, tmp_path, monkeypatch):
    plain = _fit(tumour, tmp_path / "plain")
    assert set(plain.seen) == {torch.Tensor} and len(plain.seen) == 8  # 6 training, 2 val
    with monkeypatch.context() as m:  # as before: MetaTensors from the loader to the loss
        _tracked(m)
        m.setattr("scseg.training.module.MetaTensor", ())  # no conversion in the steps
        before = _fit(tumour, tmp_path / "before")
    assert len(before.losses) == 6 and MetaTensor in before.seen
    torch.testing.assert_close(plain.losses, before.losses, rtol=1e-5, atol=1e-6)


def test_a_metatensor_batch_reaches_the_network_plain() -> None:
    """From any data module: the step hands the network and the loss plain tensors."""
    model = SegmentationModule(arch="unet", spatial_dims=2, in_channels=1, classes=2,
                               model_options={"channels": [4, 8]})  # fmt: skip
    seen = []
    model.net.register_forward_pre_hook(lambda net, args: seen.append(type(args[0])))
    batch = {"image": MetaTensor(torch.randn(2, 1, 32, 32)),
             "label": MetaTensor(torch.randint(0, 2, (2, 1, 32, 32)))}  # fmt: skip
    with pytest.warns(UserWarning, match="trainer"):  # self.log without a Trainer
        loss = model.training_step(batch, 0)
    assert seen == [torch.Tensor] and type(loss) is torch.Tensor
