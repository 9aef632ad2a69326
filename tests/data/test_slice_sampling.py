"""How slice-wise training draws its slices (:class:`scseg.data.slices.SliceDataset`):
``"case"`` as nnU-Net's 2d (each case as likely, the patch centred on a foreground voxel),
``"class"`` as nnU-Net's oversampling (a class first, then a voxel of it), ``"slice"``
among all cases' slices."""

from __future__ import annotations

import pytest
import torch
from monai import transforms as T
from monai.data import MetaTensor

from scseg.data.slices import MSDSlicesDataModule, SliceDataset


def _volume(shape, foreground) -> dict:
    """A volume whose image is its case's number (1 or 2), with labels at ``foreground``
    (a tuple of slices)."""
    label = torch.zeros(1, *shape, dtype=torch.uint8)
    label[(0, *foreground)] = 1
    return {"image": MetaTensor(torch.ones(1, *shape)), "label": MetaTensor(label)}


def _volumes():
    large = _volume((16, 16, 40), (slice(2, 14), slice(2, 14), slice(0, 30)))  # 30 slices
    small = _volume((64, 64, 10), (slice(60, 62), slice(3, 5), slice(4, 5)))  # 1 slice, 4 voxels
    small["image"] *= 2
    return [large, small]


def _draws(n=400, **options) -> list[dict]:
    dataset = SliceDataset(_volumes(), 2, T.Compose([]), **options)
    torch.manual_seed(0)
    return [dataset[i] for i in range(n)]


def test_each_case_is_as_likely_per_case_and_not_per_slice() -> None:
    """The small tumour's one slice is drawn for half the foreground draws per case, and
    for 1 in 31 of them among all foreground slices."""
    per_case = _draws(foreground_ratio=1.0, sampling="case", region=(16, 16))
    share = sum(float(d["image"].max()) == 2 for d in per_case) / len(per_case)
    assert 0.4 < share < 0.6
    per_slice = _draws(foreground_ratio=1.0, sampling="slice")
    assert sum(float(d["image"].max()) == 2 for d in per_slice) / len(per_slice) < 0.1
    assert all(d["label"].any() for d in per_case + per_slice)  # every draw has foreground


def test_the_patch_is_centred_on_foreground_per_case() -> None:
    """A 64 x 64 slice and a 16 x 16 patch: per case the crop is cut around the tumour (kept
    inside the slice), so every small-case patch shows it; no crop where the slice fits."""
    draws = _draws(foreground_ratio=1.0, sampling="case", region=(16, 16))
    small = [d for d in draws if float(d["image"].max()) == 2]
    assert small and all(d["label"].shape == (1, 16, 16) and int(d["label"].sum()) == 4
                         for d in small)  # fmt: skip
    assert all(d["label"].shape == (1, 16, 16) for d in draws if float(d["image"].max()) == 1)


def test_without_foreground_draws_any_slice_of_each_case() -> None:
    """Ratio 0: both cases, uncropped, and slices without foreground among them."""
    draws = _draws(foreground_ratio=0.0, sampling="case", region=(16, 16))
    assert {tuple(d["label"].shape) for d in draws} == {(1, 16, 16), (1, 64, 64)}
    assert any(not d["label"].any() for d in draws)


def _two_classes(channels: int) -> list[dict]:
    """One volume: a large structure on slices 18-29 (1728 voxels) and a small one of 4
    voxels on slice 35 alone, as class values 1 and 2, or (``channels`` 2) as two regions."""
    large = (slice(2, 14), slice(2, 14), slice(18, 30))
    small = (slice(6, 8), slice(6, 8), slice(35, 36))
    label = torch.zeros(channels, 16, 16, 40, dtype=torch.uint8)
    label[(0, *large)] = 1
    label[(channels - 1, *small)] = 1 if channels == 2 else 2
    return [{"image": MetaTensor(torch.ones(1, 16, 16, 40)), "label": MetaTensor(label)}]


@pytest.mark.parametrize("channels", [1, 2], ids=["classes", "regions"])
def test_a_class_is_drawn_before_its_voxel(channels: int) -> None:
    """Per voxel the small structure's slice is drawn for 4 in 1732 foreground draws; a
    class (or region) first, as nnU-Net oversamples, for about half of them."""

    def small_share(sampling: str) -> float:
        dataset = SliceDataset(_two_classes(channels), 2, T.Compose([]), foreground_ratio=1.0,
                               sampling=sampling, region=(16, 16))  # fmt: skip
        torch.manual_seed(0)
        draws = [dataset[i]["label"] for i in range(400)]
        assert all(d.any() for d in draws)  # every draw is centred on foreground
        small = 1 if channels == 2 else 2  # its region's channel, or its class value
        return sum(int((d[-1] == small).sum()) == 4 for d in draws) / len(draws)

    assert small_share("case") < 0.02
    assert 0.4 < small_share("class") < 0.6


def test_with_one_class_the_class_draw_is_the_case_draw() -> None:
    """One foreground class per case: "class" draws the same slices and patches as "case",
    number for number, so re-planning a binary task (the plan writes "class") trains it as
    before, also where a class has more voxels than "class" keeps of each (CLASS_POINTS);
    with two classes the streams part."""
    block = _volume((24, 24, 24), (slice(0, 24), slice(0, 24), slice(0, 24)))  # 13824 voxels
    block["image"] = MetaTensor(torch.arange(24**3, dtype=torch.float32).reshape(1, 24, 24, 24))
    for volumes, same in ((_volumes(), True), ([block], True), (_two_classes(1), False)):
        drawn = {}
        for sampling in ("case", "class"):
            dataset = SliceDataset(volumes, 2, T.Compose([]), foreground_ratio=0.5,
                                   sampling=sampling, region=(8, 8))  # fmt: skip
            torch.manual_seed(0)
            drawn[sampling] = [dataset[i] for i in range(60)]
        equal = all(
            torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
            for a, b in zip(drawn["case"], drawn["class"], strict=True)
        )
        assert equal == same


def test_an_unknown_sampling_is_refused() -> None:
    with pytest.raises(ValueError, match="slice_sampling"):
        MSDSlicesDataModule(root=".", slice_sampling="volume")


def _oblique_cuts_around(label: torch.Tensor, draws: int, **oblique) -> list[dict]:
    """``draws`` 16 x 16 axial patches, each cut obliquely around a drawn tumour voxel."""
    volume = {"image": MetaTensor(torch.ones(label.shape)), "label": MetaTensor(label)}
    dataset = SliceDataset([volume], 2, T.Compose([]), foreground_ratio=1.0, sampling="case",
                           region=(16, 16), oblique_prob=1.0, **oblique)  # fmt: skip
    torch.manual_seed(0)
    return [dataset[i] for i in range(draws)]


def test_an_oblique_cut_holds_the_foreground_voxel_it_was_drawn_around() -> None:
    """Turned by up to 15 degrees about the centre, an off-centre tumour leaves its own
    slice; the cut follows the drawn voxel, so every patch shows the tumour (cut in the
    voxel's own slice and cropped where it was, 44 of 100 missed it)."""
    label = torch.zeros(1, 48, 48, 48, dtype=torch.uint8)
    label[0, 36:41, 6:11, 30:35] = 1
    cuts = _oblique_cuts_around(label, 100, oblique_rotation=(0.26, 0.26, 0.26),
                                oblique_scale=(0.85, 1.15))  # fmt: skip
    assert all(d["label"].shape == (1, 16, 16) and d["label"].any() for d in cuts)


def test_an_oblique_cut_follows_a_voxel_that_a_zoom_moves_past_the_last_slice() -> None:
    """Zoomed in about the centre, a tumour one slice thick, one slice before the volume's
    end, lies past the last slice of the turned volume: the cut is that plane (clamped to
    the last slice, 49 of 50 cuts missed it)."""
    label = torch.zeros(1, 40, 40, 40, dtype=torch.uint8)
    label[0, 18:23, 18:23, 38] = 1
    cuts = _oblique_cuts_around(label, 50, oblique_rotation=(0.1, 0.1, 0.1),
                                oblique_scale=(0.85, 0.9))  # fmt: skip
    assert all(d["label"].shape == (1, 16, 16) and d["label"].any() for d in cuts)
