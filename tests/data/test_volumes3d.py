"""MSD3DDataModule: NIfTI and NRRD inputs, geometry-aware preprocessing, patch sampling."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

from scseg.data import MSD3DDataModule
from scseg.data.convert import write_msd_dataset_json, write_split

from ..conftest import tumour_nrrd_msd


def test_nrrd_volumes_in_msd_layout(tmp_path, raw_samples) -> None:
    root = tumour_nrrd_msd(raw_samples, tmp_path / "tumour_nrrd")
    dm = MSD3DDataModule(
        str(root), patch_size=(32, 32, 8), spacing=(1.5, 1.5, 6.5), samples_per_volume=2,
        foreground_ratio=1.0, batch_size=2,
    )  # fmt: skip
    dm.setup("fit")
    assert dm.class_names == ["bg", "tumour"] and dm.intensity == "zscore"
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 1, 32, 32, 8) and batch["label"].shape == (2, 1, 32, 32, 8)
    # foreground_ratio=1: every patch is centred on tumour
    assert all(batch["label"][i].sum() > 0 for i in range(2))
    val = dm.val_set[0]
    # brain1: 256x256x25 at 0.78x0.78x6.5 mm, resampled to 1.5 mm in-plane
    assert val["image"].shape[1:] == (134, 134, 25)
    image = val["image"][val["image"] != 0]
    assert abs(float(image.mean())) < 0.05 and abs(float(image.std()) - 1) < 0.05
    assert set(torch.unique(val["label"]).tolist()) == {0.0, 1.0}


def test_overlapping_split_is_refused(tmp_path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    write_msd_dataset_json(root, "t", ["CT"], {0: "bg", 1: "x"}, ["a", "b"])
    (root / "split.json").write_text(json.dumps({"train": ["a", "b"], "val": ["b"]}))
    dm = MSD3DDataModule(str(root))
    with pytest.raises(ValueError, match=r"cases in both train and val: \['b'\]"):
        dm.setup("fit")


def test_ct_intensity_chosen_from_dataset_json(tmp_path) -> None:
    import nibabel as nib

    root = tmp_path / "ct"
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True)
    for offset, case in enumerate(("a", "b")):
        hu = np.full((20, 20, 20), -1000.0, np.float32)
        hu[5 + offset : 15, 5:15, 5:15] = 100.0
        nib.save(nib.Nifti1Image(hu, np.eye(4)), root / "imagesTr" / f"{case}.nii.gz")
        nib.save(
            nib.Nifti1Image((hu > 0).astype(np.uint8), np.eye(4)),
            root / "labelsTr" / f"{case}.nii.gz",
        )
    write_msd_dataset_json(root, "ct", ["CT"], {0: "bg", 1: "organ"}, ["a", "b"])
    write_split(root, ["a"], ["b"])
    dm = MSD3DDataModule(str(root), patch_size=(16, 16, 16), ct_window=(-100.0, 200.0))
    dm.setup("fit")
    assert dm.intensity == "ct"
    image = dm.val_set[0]["image"]
    assert float(image.min()) == 0.0 and float(image.max()) == pytest.approx(200 / 300)


def test_repeats_visit_each_volume_again_without_loading_it_again(
    tmp_path, raw_samples, monkeypatch
):
    root = tmp_path / "tumour"
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True)
    from scseg.data.convert import nrrd_to_nifti

    for case in ("brain1", "breast1"):
        nrrd_to_nifti(
            raw_samples / "tumour3d" / f"{case}_image.nrrd", root / "imagesTr" / f"{case}.nii.gz"
        )
        nrrd_to_nifti(
            raw_samples / "tumour3d" / f"{case}_label.nrrd", root / "labelsTr" / f"{case}.nii.gz"
        )
    write_msd_dataset_json(root, "t", ["MR"], {0: "bg", 1: "tumour"}, ["brain1", "breast1"])
    write_split(root, ["breast1"], ["brain1"])
    dm = MSD3DDataModule(str(root), patch_size=(16, 16, 8), repeats=3, validate=False)
    loads = []
    from monai.transforms import LoadImaged

    original = LoadImaged.__call__

    def counting(self, data, *args, **kwargs):
        loads.append(data["image"])
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(LoadImaged, "__call__", counting)
    dm.setup("fit")
    monkeypatch.undo()
    train_loads = [p for p in loads if "breast1" in p]
    assert len(train_loads) == 1  # cached once, not once per repeat
    assert len(dm.train_set) == 3
    patches = [dm.train_set[i] for i in range(3)]
    assert all(p[0]["image"].shape == (1, 16, 16, 8) for p in patches)


def _plain_folder(tmp_path, raw_samples, cases=("brain1", "brain2", "breast1")):
    """imagesTr/labelsTr of real NRRD cases, no dataset.json."""
    root = tmp_path / "plain"
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True)
    for case in cases:
        for kind, folder in (("image", "imagesTr"), ("label", "labelsTr")):
            shutil.copy(
                raw_samples / "tumour3d" / f"{case}_{kind}.nrrd", root / folder / f"{case}.nrrd"
            )
    return root


def test_folds_and_a_folder_without_dataset_json(tmp_path, raw_samples) -> None:
    root = _plain_folder(tmp_path, raw_samples)
    split = {"train": ["brain1", "breast1"], "val": ["brain2"],
             "folds": [{"train": ["brain1"], "val": ["brain2", "breast1"]},
                       {"train": ["brain2", "breast1"], "val": ["brain1"]}]}  # fmt: skip
    (root / "split.json").write_text(json.dumps(split))
    options = dict(patch_size=(32, 32, 8), spacing=(2.0, 2.0, 6.5), validate=False)
    dm = MSD3DDataModule(str(root), fold=1, **options)
    dm.setup("fit")
    assert [c["case"] for c in dm.val_set.data] == ["brain1"]
    assert sorted(c["case"] for c in dm.train_set.dataset.data) == ["brain2", "breast1"]
    assert dm.test_set is dm.val_set  # held once
    with pytest.raises(ValueError, match=r"fold 2 asked, the file has folds 0..1"):
        MSD3DDataModule(str(root), fold=2, **options).setup("fit")
    (root / "labelsTr" / "brain2.nrrd").unlink()
    with pytest.raises(ValueError, match=r"labelsTr: no label for 1 of 3 image\(s\): brain2"):
        MSD3DDataModule(str(root), **options).setup("fit")


def test_disk_cache_gives_the_memory_cache_batches(tmp_path, raw_samples) -> None:
    """cache: disk writes each case once, preprocessed, and training then draws the same
    patches as with the volumes in memory; a case whose file changes is redone."""
    import lightning.pytorch as pl

    root = _plain_folder(tmp_path, raw_samples)
    (root / "split.json").write_text(
        json.dumps({"train": ["brain1", "breast1"], "val": ["brain2"]})
    )
    options = dict(patch_size=(32, 32, 8), spacing=(2.0, 2.0, 6.5), samples_per_volume=2)
    batches = {}
    for cache in ("memory", "disk", "none"):
        dm = MSD3DDataModule(str(root), cache=cache, cache_dir=str(tmp_path / "pre"), **options)
        dm.setup("fit")
        pl.seed_everything(3)
        batches[cache] = [b["image"] for b in dm.train_dataloader()] + [dm.val_set[0]["image"]]
    for cache in ("disk", "none"):
        assert all(
            torch.equal(a, b) for a, b in zip(batches["memory"], batches[cache], strict=True)
        )
    written = sorted((tmp_path / "pre").glob("*/*.pt"))
    assert len(written) == 3  # each case once, in one folder for these settings
    before = {p.name for p in written}
    dm = MSD3DDataModule(str(root), cache="disk", cache_dir=str(tmp_path / "pre"), **options)
    dm.setup("fit")
    dm.val_set[0]
    assert {p.name for p in (tmp_path / "pre").glob("*/*.pt")} == before  # read, not redone
    stat = (root / "imagesTr" / "brain2.nrrd").stat()  # the file replaced: a new time
    os.utime(root / "imagesTr" / "brain2.nrrd", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    dm.val_set[0]
    assert len(list((tmp_path / "pre").glob("*/*.pt"))) == 4  # the changed file is redone
    other = MSD3DDataModule(str(root), cache="disk", cache_dir=str(tmp_path / "pre"),
                            **{**options, "spacing": (3.0, 3.0, 6.5)})  # fmt: skip
    other.setup("fit")
    other.val_set[0]
    assert len({p.parent for p in (tmp_path / "pre").glob("*/*.pt")}) == 2  # its own folder


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"rotation": (0.5, 0.5)}, "rotation must be 3 angles"),
        ({"rotation": (0.0, -0.1, 0.0)}, "rotation must be 3 angles"),
        ({"zoom": (1.4, 0.7)}, "zoom must be"),
        ({"zoom": (0.0, 1.4)}, "zoom must be"),
        ({"spatial_prob": 1.5}, "spatial_prob must be"),
    ],
)
def test_bad_spatial_augmentation_is_refused(option, message) -> None:
    with pytest.raises(ValueError, match=message):
        MSD3DDataModule(sample="brain_tissue3d", **option)


def _rod_patch(seed: int = 0) -> dict:
    """A patch whose image and label do not vary along axis 2."""
    plane = torch.from_numpy(np.random.default_rng(seed).random((24, 20))).float()
    image = plane[None, :, :, None].expand(1, 24, 20, 10).clone()
    return {"image": image, "label": (image > 0.5).float()}


def _turns(dm: MSD3DDataModule, keys):
    """The patch turn (and zoom) of a data module's training augmentation."""
    from scseg.data.augment import patch_turns

    hp = dm.hparams
    return patch_turns(keys, hp.rotation, hp.zoom, hp.spatial_prob)


def test_rotation_turns_about_the_axes_asked() -> None:
    """rotation=(0, 0, a) turns each slice across axis 2 alike (a turn about that axis);
    a turn about axis 0 mixes the slices. The patch keeps its shape either way."""
    keys = ("image", "label")
    for angles, slices_alike in (((0.0, 0.0, 0.5), True), ((0.5, 0.0, 0.0), False)):
        dm = MSD3DDataModule(sample="brain_tissue3d", rotation=angles, spatial_prob=1.0)
        (turn,) = _turns(dm, keys)
        turn.set_random_state(0)
        patch = _rod_patch()
        out = turn(patch)
        assert out["image"].shape == patch["image"].shape
        assert not torch.equal(out["image"], patch["image"])  # it was turned
        alike = all(torch.equal(out["label"][..., k], out["label"][..., 0]) for k in range(10))
        assert alike == slices_alike, angles


def test_zoom_enlarges_the_patch_centre() -> None:
    """zoom=(2, 2) at spatial_prob 1 shows the centre half of the patch at twice the size
    (labels by nearest neighbour); spatial_prob 0 leaves the patch as it was; the default
    adds no zoom at all (hand-written configs draw the same patches as before)."""
    keys = ("image", "label")
    dm = MSD3DDataModule(sample="brain_tissue3d", rotation=(0.0, 0.0, 0.0), zoom=(2.0, 2.0),
                         spatial_prob=1.0)  # fmt: skip
    _, zoom = _turns(dm, keys)
    patch = _rod_patch(1)
    out = zoom(patch)["label"]
    centre = patch["label"][:, 6:18, 5:15, 2:8]
    twice = centre.repeat_interleave(2, 1).repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert out.shape == patch["label"].shape
    assert torch.equal(out, twice[:, :, :, 1:11])
    dm = MSD3DDataModule(sample="brain_tissue3d", zoom=(2.0, 2.0), spatial_prob=0.0)
    _, zoom = _turns(dm, keys)
    assert torch.equal(zoom(patch)["label"], patch["label"])
    (turn,) = _turns(MSD3DDataModule(sample="brain_tissue3d"), keys)
    assert (turn.rand_rotate.range_x, turn.rand_rotate.range_z) == ((0.0, 0.0), (-0.26, 0.26))


def test_checkpoints_record_the_axes_mirrored_in_training() -> None:
    """What test-time mirroring may use: the volume's flip axes; for slices, the mirrored
    in-plane axes as the volume's own (slice axis 1: in-plane 0 and 1 are volume 0 and 2)."""
    from scseg.data.slices import MSDSlicesDataModule

    assert MSD3DDataModule("unused", flip_axes=(1, 2)).info()["mirror_axes"] == [1, 2]
    assert MSD3DDataModule("unused", flip_axes=()).info()["mirror_axes"] == []
    slices = MSDSlicesDataModule("unused", slice_axis=1, flip_axes=(1,))
    assert slices.info()["mirror_axes"] == [2]
