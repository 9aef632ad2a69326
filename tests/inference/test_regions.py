"""Prediction with a model of regions that overlap: masks (NIfTI, 4D) or one label map by
the regions' order, and DICOM-SEG with overlapping segments read back by highdicom."""

from __future__ import annotations

import highdicom as hd
import nibabel as nib
import numpy as np
import pytest
import torch

from scseg.data.labels import regions_to_label_map
from scseg.inference import LoadedModel
from scseg.inference.ensemble import ConfigurationEnsemble
from scseg.inference.runner import PredictOptions, predict_one
from scseg.inference.volume import preprocess_volume, sliding_window_probabilities
from scseg.io.dicom import find_series, read_series
from scseg.models import create_model

from ..dicom_series import write_series

NAMES = ["whole", "core", "enhancing"]


@pytest.fixture(scope="module")
def region_model() -> LoadedModel:
    torch.manual_seed(0)
    net = create_model("unet", spatial_dims=3, in_channels=1, classes=3, channels=(8, 16))
    with torch.no_grad():  # logits near 0: each region covers part of the volume
        net.head.weight.mul_(20.0)
    info = {"patch_size": [16, 16, 16], "intensity": "zscore", "class_names": NAMES,
            "regions": [[1, 2, 3], [2, 3], [3]], "region_order": [1, 2, 3]}  # fmt: skip
    return LoadedModel(net.eval(), 3, 1, 3, {"multilabel": True}, info)


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    root = tmp_path_factory.mktemp("regions")
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(20, 18, 12)) * 100 + 500).astype(np.int16)
    affine = np.diag([0.9, 0.9, 2.0, 1.0])
    affine[:3, 3] = (-9.0, -8.0, 4.0)
    nib.save(nib.Nifti1Image(data, affine), root / "scan.nii.gz")
    write_series(data, affine, root / "dicom" / "scan")
    return root


def _network_masks(model: LoadedModel, path) -> np.ndarray:
    """The network's own masks on the input grid (RAS, no resampling: the identity)."""
    _, data = preprocess_volume(model, path)
    probs = sliding_window_probabilities(model, data["image"].as_tensor()[None].float(),
                                         [16, 16, 16])[0]  # fmt: skip
    return (probs > 0.5).numpy()


def test_masks_and_label_map_written_equal_the_network_masks(region_model, scan, tmp_path):
    expected = _network_masks(region_model, scan / "scan.nii.gz")
    assert all(0 < m.mean() < 1 for m in expected)  # regions neither empty nor everywhere
    assert (expected.sum(0) > 1).any()  # and they overlap
    written = predict_one(region_model, scan / "scan.nii.gz", tmp_path / "masks", PredictOptions())
    image = nib.load(written["labels"])
    np.testing.assert_array_equal(np.moveaxis(np.asarray(image.dataobj), -1, 0), expected)
    np.testing.assert_array_equal(image.affine, nib.load(scan / "scan.nii.gz").affine)
    assert written["names"].read_text().splitlines()[1:] == [
        "0\tbackground",
        *[f"{i}\t{n}" for i, n in enumerate(NAMES, 1)],
    ]
    options = PredictOptions(regions="labelmap")
    written = predict_one(region_model, scan / "scan.nii.gz", tmp_path / "map", options)
    labels = np.asarray(nib.load(written["labels"]).dataobj)
    np.testing.assert_array_equal(labels, regions_to_label_map(expected, [1, 2, 3]))


def test_dicom_seg_holds_overlapping_segments(region_model, scan, tmp_path):
    series = find_series(scan / "dicom")[0]
    options = PredictOptions(formats=("nifti", "dicom-seg"))
    written = predict_one(region_model, series, tmp_path, options)
    masks = np.asarray(nib.load(written["labels"]).dataobj)  # (X, Y, Z, R)
    seg = hd.seg.segread(written["dicom-seg"])
    assert [s.SegmentLabel for s in seg.SegmentSequence] == NAMES
    ordered = [ds.SOPInstanceUID for ds in read_series(series).datasets]
    frames = seg.get_pixels_by_source_instance(ordered, combine_segments=False)
    np.testing.assert_array_equal(frames.transpose(2, 1, 0, 3), masks)  # (slice, row, col, R)
    assert (masks.sum(-1) > 1).any()  # segments that overlap, as the standard allows


def test_attention_report_shows_the_regions(region_model, scan, tmp_path):
    from scseg.inference.figures import attention_figures

    written = attention_figures(region_model, scan / "scan.nii.gz", tmp_path, html=True)
    page = next(p for p in written if p.suffix == ".html").read_text()
    assert all(name in page for name in NAMES)
    assert "regions that may overlap: each voxel is coloured by the last region" in page


def test_monai_bundle_of_a_region_model_gives_the_same_masks(region_model, scan, tmp_path):
    import warnings

    import monai.bundle

    from scseg.inference.bundle import write_bundle

    bundle = write_bundle(region_model, tmp_path / "bundle")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "scan.nii.gz").symlink_to(scan / "scan.nii.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monai.bundle.run(config_file=str(bundle / "configs" / "inference.json"),
                         bundle_root=str(bundle), dataset_dir=str(tmp_path / "in"),
                         output_dir=str(tmp_path / "monai"))  # fmt: skip
    theirs = np.asarray(nib.load(tmp_path / "monai" / "scan_seg.nii.gz").dataobj)
    ours = predict_one(region_model, scan / "scan.nii.gz", tmp_path / "ours", PredictOptions())
    masks = np.asarray(nib.load(ours["labels"]).dataobj)
    np.testing.assert_array_equal(theirs.reshape(masks.shape), masks)


def test_label_map_names_each_value_by_the_order_semantics(region_model, scan, tmp_path):
    """In labelmap mode value 1 holds "whole" voxels that no later region claims: its
    name (in the .tsv and the DICOM-SEG) once said "whole" over fewer voxels than the
    whole region. Each name, read as "A without B or C", must select exactly its voxels
    from the masks that masks mode writes."""
    series = find_series(scan / "dicom")[0]
    both = ("nifti", "dicom-seg")
    masks_out = predict_one(region_model, series, tmp_path / "masks", PredictOptions())
    stack = np.moveaxis(np.asarray(nib.load(masks_out["labels"]).dataobj), -1, 0)
    masks = dict(zip(NAMES, stack, strict=True))
    options = PredictOptions(formats=both, regions="labelmap")
    written = predict_one(region_model, series, tmp_path / "map", options)
    labels = np.asarray(nib.load(written["labels"]).dataobj)
    table = dict(line.split("\t") for line in written["names"].read_text().splitlines()[1:])
    seg = hd.seg.segread(written["dicom-seg"])
    assert [s.SegmentLabel for s in seg.SegmentSequence] == [table[str(v)] for v in (1, 2, 3)]
    assert table["1"] == "whole without core or enhancing" and table["3"] == "enhancing"
    ordered = [ds.SOPInstanceUID for ds in read_series(series).datasets]
    frames = seg.get_pixels_by_source_instance(ordered, combine_segments=False)
    for value in (1, 2, 3):
        first, _, rest = table[str(value)].partition(" without ")
        expected = masks[first].astype(bool)
        for other in filter(None, rest.split(" or ")):
            expected &= ~masks[other].astype(bool)
        assert expected.any()
        np.testing.assert_array_equal(labels == value, expected)
        np.testing.assert_array_equal(frames[..., value - 1].transpose(2, 1, 0) > 0, expected)


def test_label_map_names_only_the_overlapping_later_regions() -> None:
    from scseg.data.labels import labelmap_names

    assert labelmap_names(["whole_tumour", "tumour_core"], [1, 2], [[1, 2], [2]]) == [
        "background", "whole_tumour without tumour_core", "tumour_core"]  # fmt: skip
    assert labelmap_names(["a", "b"], [1, 3], [[1], [2]]) == ["background", "a", "unused_2", "b"]
    assert labelmap_names(["a", "b"], [1, 2]) == ["background", "a without b", "b"]


def test_region_probabilities_and_an_ensemble_of_region_models(region_model, scan, tmp_path):
    """--probabilities holds each region's sigmoid on the input grid; an ensemble of
    configurations masks where the mean of its members' sigmoids passes 0.5."""
    path = scan / "scan.nii.gz"
    options = PredictOptions(probabilities=True)
    written = predict_one(region_model, path, tmp_path / "one", options)
    probs = np.asarray(nib.load(written["probabilities"]).dataobj, np.float32)
    _, data = preprocess_volume(region_model, path)
    own = sliding_window_probabilities(region_model, data["image"].as_tensor()[None].float(),
                                       [16, 16, 16])[0]  # fmt: skip
    np.testing.assert_allclose(np.moveaxis(probs, -1, 0), own.numpy(), atol=1e-6)
    masks = np.asarray(nib.load(written["labels"]).dataobj)
    np.testing.assert_array_equal(masks, (probs > 0.5).astype(np.uint8))

    torch.manual_seed(1)
    other_net = create_model("unet", spatial_dims=3, in_channels=1, classes=3, channels=(8, 16))
    with torch.no_grad():
        other_net.head.weight.mul_(20.0)
    other = LoadedModel(other_net.eval(), 3, 1, 3, region_model.hparams, region_model.data_info)
    theirs = predict_one(other, path, tmp_path / "other", options)["probabilities"]
    mean = (probs + np.asarray(nib.load(theirs).dataobj, np.float32)) / 2
    both = ConfigurationEnsemble([region_model, other], ["a", "b"])
    written = predict_one(both, path, tmp_path / "both", options)
    np.testing.assert_allclose(nib.load(written["probabilities"]).get_fdata(), mean, atol=1e-6)
    masks = np.asarray(nib.load(written["labels"]).dataobj)
    np.testing.assert_array_equal(masks, (mean > 0.5).astype(np.uint8))
    assert not np.array_equal(masks, (probs > 0.5).astype(np.uint8))  # both members count
