"""Oblique training slices (:func:`scseg.data.slices.oblique_slice`): the plane a slice-wise
network trains on, turned out of the slice axis as a subject out of the training pose is
cut; image and labels cut together."""

from __future__ import annotations

import pytest
import torch
from monai import transforms as T
from monai.data import MetaTensor

from scseg.data.slices import MSDSlicesDataModule, SliceDataset, oblique_slice, oblique_turn

from ..fakes import ellipsoid_dataset


def _volume(shape=(30, 34, 26)) -> dict:
    torch.manual_seed(0)
    image = torch.rand(1, *shape) + 1.0
    label = torch.randint(0, 5, (1, *shape)).to(torch.uint8)
    return {"image": MetaTensor(image), "label": MetaTensor(label)}


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_no_turn_and_no_scale_cuts_the_plain_slice(axis) -> None:
    volume = _volume()
    for k in (0, 7, volume["image"].shape[axis + 1] - 1):
        cut = oblique_slice(volume, axis, k, oblique_turn((0.0, 0.0, 0.0), (1.0, 1.0)))
        for key in ("image", "label"):
            plain = volume[key].select(axis + 1, k)
            assert type(cut[key]) is type(plain) and cut[key].dtype == plain.dtype
            assert torch.allclose(torch.as_tensor(cut[key]), torch.as_tensor(plain), atol=1e-5)


def test_the_plane_leaves_the_slice_axis() -> None:
    """Labels that are the coronal index (1-32): a plain coronal slice holds one, an oblique
    one crosses several, never more than its tilt allows."""
    shape = (32, 32, 32)
    depth = torch.arange(1, 33).view(1, 1, 32, 1).expand(1, *shape).clone()
    volume = {"image": depth.float(), "label": depth.to(torch.uint8)}
    torch.manual_seed(1)
    spans = []
    for _ in range(20):
        cut = oblique_slice(volume, 1, 16, oblique_turn((0.26, 0.26, 0.26), (1.0, 1.0)))
        inside = cut["label"][cut["label"] > 0].float()  # nearest: 0 only outside the volume
        spans.append(float(inside.max() - inside.min()))
    # tilted by up to 15 degrees toward each in-plane axis, across 32 voxels: at most
    # 32 * (sin 15 + sin 15) ~ 16.6 coronal slices apart
    assert max(spans) > 4 and max(spans) <= 17


def test_a_marker_and_its_label_are_cut_together() -> None:
    shape = (40, 40, 40)
    image, label = torch.ones(1, *shape), torch.zeros(1, *shape, dtype=torch.uint8)
    image[0, 8:13, 18:23, 26:31] = 9.0  # off centre: a turn about the centre moves it
    label[0, 8:13, 18:23, 26:31] = 3
    volume = {"image": image, "label": label}
    torch.manual_seed(2)
    seen, moved = 0, 0.0
    for _ in range(40):
        cut = oblique_slice(volume, 1, 20, oblique_turn((0.26, 0.26, 0.26), (0.85, 1.15)))
        marker = torch.nonzero(cut["image"][0] > 5).float()
        labelled = torch.nonzero(cut["label"][0] == 3).float()
        if len(marker) < 4:
            continue  # the plane missed the marker
        seen += 1
        assert (marker.mean(0) - labelled.mean(0)).abs().max() <= 1.0
        moved = max(moved, float((marker.mean(0) - torch.tensor([10.0, 28.0])).abs().max()))
    assert seen > 10 and moved > 1.5


def test_oblique_cuts_only_draw_when_asked() -> None:
    """Off (no turn, no scale, or probability 0), the dataset draws the same slices from
    the same seed as before the option existed; on, a share of them differ."""
    volumes = [_volume((24, 20, 22))]

    def items(**oblique):
        dataset = SliceDataset(volumes, 1, T.Compose([]), **oblique)
        torch.manual_seed(3)
        return [dataset[i]["image"] for i in range(12)]

    before = items()
    for off in ({"oblique_prob": 0.5}, {"oblique_rotation": (0.2, 0.2, 0.2), "oblique_prob": 0}):
        assert all(torch.equal(a, b) for a, b in zip(before, items(**off), strict=True))
    on = items(oblique_rotation=(0.2, 0.2, 0.2), oblique_prob=1.0)
    assert not any(
        a.shape == b.shape and torch.equal(a, b) for a, b in zip(before, on, strict=True)
    )


@pytest.mark.parametrize(
    "option, message",
    [({"oblique_rotation": (0.1, 0.1)}, "oblique_rotation"),
     ({"oblique_scale": (1.2, 0.9)}, "oblique_scale"),
     ({"oblique_prob": 1.5}, "oblique_prob")],
)  # fmt: skip
def test_bad_oblique_options_are_refused(option, message) -> None:
    with pytest.raises(ValueError, match=message):
        MSDSlicesDataModule(root=".", **option)


def test_the_module_trains_on_oblique_slices(tmp_path) -> None:
    root = ellipsoid_dataset(tmp_path / "ellipsoids", {"a": 0.0, "b": 4.0})
    module = MSDSlicesDataModule(root=str(root), classes=3, patch_size=(32, 32),
                                 oblique_rotation=(0.26, 0.26, 0.26), oblique_scale=(0.85, 1.15),
                                 oblique_prob=1.0, batch_size=4)  # fmt: skip
    module.setup("fit")
    assert module.train_set.oblique == ((0.26, 0.26, 0.26), (0.85, 1.15))
    assert module.train_set.oblique_prob == 1.0
    batch = next(iter(module.train_dataloader()))
    assert batch["image"].shape == (4, 1, 32, 32) and batch["label"].shape == (4, 1, 32, 32)
    assert set(batch["label"].unique().tolist()) <= {0, 1, 2}


def test_sparse_labels_outside_the_volume_are_not_annotated() -> None:
    """What an oblique cut takes from outside the volume was once labelled 0, and so
    trained as annotated background; with sparse labels it is the ignore value."""
    shape = (24, 20, 22)
    volume = {"image": MetaTensor(torch.rand(1, *shape) + 1.0),
              "label": MetaTensor(torch.ones(1, *shape, dtype=torch.uint8))}  # fmt: skip
    dataset = SliceDataset([volume], 1, T.Compose([]), ignore_index=2,
                           oblique_rotation=(0.26, 0.26, 0.26), oblique_prob=1.0)  # fmt: skip
    torch.manual_seed(4)
    labels = torch.stack([torch.as_tensor(dataset[i]["label"]) for i in range(10)])
    assert (labels == 2).any() and (labels == 1).any()
    assert not (labels == 0).any()  # every voxel inside is annotated 1; outside is ignore
    # without sparse labels the outside stays background (0), as before
    turn = oblique_turn((0.26, 0.26, 0.26), (1.0, 1.0))
    cut, ignored = (oblique_slice(volume, 1, 10, turn, fill) for fill in (None, 2))
    assert (cut["label"] == 0).any()
    assert torch.equal(cut["label"] == 0, ignored["label"] == 2)
