"""Native-space subjects for the parcellation sample: image and labels move together, the
draw is seeded and recorded, and copying the training atlas no longer scores well."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to

from scseg.atlas.native import draw_warp, warp_volume
from scseg.cli import main
from scseg.evaluation import mean_dice


def test_a_marker_in_the_image_and_its_label_move_together() -> None:
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = -40
    image = np.zeros((40, 40, 40), np.float32)
    labels = np.zeros((40, 40, 40), np.uint8)
    image[24:27, 14:17, 20:23] = 100.0  # a marker off the centre, where the warp moves most
    labels[24:27, 14:17, 20:23] = 7
    for seed in range(3):
        warp = draw_warp(seed, image.shape, affine, centre_mm=(0.0, 0.0, 0.0))
        moved_image = warp_volume(image, affine, warp, labels=False)
        moved_labels = warp_volume(labels, affine, warp, labels=True)
        peak = np.unravel_index(np.argmax(moved_image), image.shape)
        assert moved_labels[peak] == 7, seed
        assert set(np.unique(moved_labels)) <= {0, 7}  # nearest: no value in between
        centre = np.argwhere(moved_labels == 7).mean(0)
        assert np.abs(centre - np.array([25, 15, 21])).max() > 1  # it did move
        again = draw_warp(seed, image.shape, affine, centre_mm=(0.0, 0.0, 0.0))
        np.testing.assert_array_equal(again.grid, warp.grid)  # seeded
        assert again.record() == warp.record()


def test_native_subjects_from_the_cli_are_recorded_and_defeat_the_atlas_copy(
    data_env, capsys
) -> None:
    assert main(["data", "brain_parcellation3d", "--native", "2"]) == 0
    folder = data_env / "datasets" / "brain_parcellation3d_neuromorphometrics"
    assert capsys.readouterr().out.strip() == f"brain_parcellation3d: {folder}"
    records = json.loads((folder / "native_transforms.json").read_text())
    assert sorted(records) == ["native_00", "native_01"]
    for record in records.values():
        assert record["source"] == "icbm2009c_asym.nii.gz"
        assert all(abs(a) <= 15 for a in record["rotation_deg"])
        assert all(0.85 <= s <= 1.15 for s in record["scale"])
        assert all(abs(t) <= 15 for t in record["translation_mm"])
        assert np.abs(np.load(folder / record["grid_file"])).max() <= 4.0 + 1e-6
    split = json.loads((folder / "split_native.json").read_text())
    assert split == {"train": ["fsl_mni152"], "val": ["native_00", "native_01"]}
    listed = {e["image"] for e in json.loads((folder / "dataset.json").read_text())["training"]}
    assert {"./imagesTr/native_00.nii.gz", "./imagesTr/native_01.nii.gz"} <= listed
    assert json.loads((folder / "split.json").read_text())["val"] == ["icbm2009c_asym"]
    # the atlas copied by world position: near perfect on the MNI template, not here
    train = nib.load(folder / "labelsTr" / "fsl_mni152.nii.gz")
    scores = {}
    for case in ("icbm2009c_asym", "native_00", "native_01"):
        truth = nib.load(folder / "labelsTr" / f"{case}.nii.gz")
        copy = np.asarray(resample_from_to(train, truth, order=0).dataobj)
        scores[case] = mean_dice(np.asarray(truth.dataobj), copy)
        image = nib.load(folder / "imagesTr" / f"{case}.nii.gz")
        np.testing.assert_array_equal(image.affine, truth.affine)  # the template's grid
    assert scores["icbm2009c_asym"] > 0.95
    assert scores["native_00"] < 0.5 and scores["native_01"] < 0.5, scores


def test_both_parcellation_modules_prepare_the_native_subjects(monkeypatch) -> None:
    """The slice-wise module, as the volume one, asks the sample for its native subjects,
    so ``split_file: split_native.json`` works in a fresh clone with either config."""
    import scseg.data.samples as samples
    from scseg.data import MSD3DDataModule, MSDSlicesDataModule

    asked = []
    monkeypatch.setattr(samples, "prepare_sample", lambda name, **kw: asked.append((name, kw)))
    for module in (MSDSlicesDataModule, MSD3DDataModule):
        module(sample="brain_parcellation3d", atlas="aal", native=3).prepare_data()
        module(sample="brain_parcellation3d").prepare_data()
    expected = [("brain_parcellation3d", {"atlas": "aal", "native": 3}),
                ("brain_parcellation3d", {"atlas": None, "native": 0})]  # fmt: skip
    assert asked == expected * 2


def test_the_separable_displacement_is_scipys_3d_spline() -> None:
    """``displacement`` multiplies the grid by one 1-D spline matrix per axis; it must give
    what cubic B-spline interpolation of the whole grid at every voxel gives."""
    from scipy.ndimage import map_coordinates

    from scseg.atlas.native import displacement

    shape, affine = (23, 30, 17), np.diag([2.0, 2.0, 2.0, 1.0])
    warp = draw_warp(5, shape, affine, centre_mm=(20.0, 30.0, 15.0))
    axes = [np.arange(n, dtype=np.float32) / k for n, k in zip(shape, warp.grid_step, strict=True)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"))
    expected = np.stack([map_coordinates(warp.grid[c], points, order=3, mode="nearest")
                         for c in range(3)])  # fmt: skip
    found = displacement(warp, shape)
    assert found.shape == (3, *shape) and found.dtype == np.float32
    np.testing.assert_allclose(found, expected, atol=1e-5)
    assert np.abs(found).max() > 1.0  # a warp that moves, not zeros on both sides
