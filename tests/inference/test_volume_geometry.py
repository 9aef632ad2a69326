"""Output volumes keep the input's affine, orientation, spacing and shape, and what is
predicted lands where it is in the input."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from scseg.data.convert import nrrd_to_nifti
from scseg.inference import inversion, predict_volume

from .conftest import dice


def _rotation(degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


GRIDS = {
    # name: (3x3 direction*spacing, shape)
    "ras-iso": (np.diag([1.0, 1.0, 1.0]), (40, 40, 40)),
    "lps-aniso": (np.diag([-0.8, -0.8, 3.0]), (49, 47, 13)),
    "oblique": (_rotation(25) @ np.diag([1.1, 0.9, 2.0]), (37, 41, 21)),
    "oblique-flipped-odd": (_rotation(-40) @ np.diag([-0.7, 1.3, -2.5]), (53, 31, 15)),
}


def _sphere_volume(tmp_path, name: str, qcode: int = 1, scode: int = 2):
    linear, shape = GRIDS[name]
    affine = np.eye(4)
    affine[:3, :3] = linear
    # Put the grid's centre near world (5, -7, 11) so origins differ from zero.
    centre_vox = (np.array(shape) - 1) / 2
    affine[:3, 3] = np.array([5.0, -7.0, 11.0]) - linear @ centre_vox
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    world = ijk @ linear.T + affine[:3, 3]
    inside = np.linalg.norm(world - np.array([7.0, -5.0, 9.0]), axis=-1) < 9.0
    image = nib.Nifti1Image(inside.astype(np.float32), affine)
    image.set_qform(affine, code=qcode)
    image.set_sform(affine, code=scode)
    path = tmp_path / f"{name}.nii.gz"
    nib.save(image, path)
    return path, inside


@pytest.mark.parametrize("name", list(GRIDS))
def test_geometry_equal_and_sphere_in_place(name, oracle_3d, tmp_path) -> None:
    path, truth = _sphere_volume(tmp_path, name)
    result = predict_volume(oracle_3d, path, probabilities=True)
    source = nib.load(path)
    out = result.labels
    assert out.shape == source.shape
    np.testing.assert_array_equal(out.affine, source.affine)
    assert nib.aff2axcodes(out.affine) == nib.aff2axcodes(source.affine)
    assert out.header.get_zooms() == source.header.get_zooms()
    for form in ("qform", "sform"):
        got, got_code = getattr(out.header, f"get_{form}")(coded=True)
        want, want_code = getattr(source.header, f"get_{form}")(coded=True)
        assert got_code == want_code
        np.testing.assert_allclose(got, want, atol=1e-6)
    labels = np.asarray(out.dataobj)
    assert np.issubdtype(labels.dtype, np.integer) and out.get_data_dtype() == np.uint8
    # The sphere comes back where it was, after resampling to 1.5 mm and back.
    assert dice(labels == 1, truth) > 0.95
    probs = np.asarray(result.probabilities.dataobj)
    assert probs.shape == (*source.shape, 2)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-4)


def test_written_file_keeps_geometry(oracle_3d, tmp_path) -> None:
    path, _ = _sphere_volume(tmp_path, "oblique")
    written = tmp_path / "out.nii.gz"
    nib.save(predict_volume(oracle_3d, path).labels, written)
    a, b = nib.load(path), nib.load(written)
    np.testing.assert_array_equal(a.affine, b.affine)
    assert a.shape == b.shape and a.header.get_zooms() == b.header.get_zooms()


@pytest.mark.parametrize(("case", "minimum"), [("brain1", 0.93), ("breast1", 0.8)])
def test_real_sample_label_predicted_back_in_place(case, minimum, oracle_3d, raw_samples, tmp_path):
    """A real clinical volume's label (LPS, 0.78 x 0.78 x 6.5 mm) as the input: after
    resampling to 1.5 mm isotropic and back, the prediction sits on the label."""
    source = raw_samples / "tumour3d" / f"{case}_label.nrrd"
    result = predict_volume(oracle_3d, source)
    reference = nrrd_to_nifti(source, tmp_path / "ref.nii.gz")
    np.testing.assert_allclose(result.labels.affine, reference.affine)
    assert result.labels.shape == reference.shape
    truth = np.asarray(reference.dataobj) > 0
    # (breast1's tumour is 143 voxels, so its boundary weighs more)
    assert dice(np.asarray(result.labels.dataobj) == 1, truth) > minimum


def test_class_chunked_inversion_equals_inverting_all_classes(raw_samples, tmp_path, monkeypatch):
    """137 classes on a real MR volume (the centre of brain1: LPS, 0.78 x 0.78 x 6.5 mm,
    predicted at 1.5 x 1.5 x 5 mm): inverting a few classes at a time with a running argmax
    gives the labels of inverting all classes at once, exact ties included, and its
    probabilities to float rounding by the separable resampler, exactly by MONAI's."""
    import torch
    from monai import transforms as T
    from monai.data import MetaTensor

    from scseg.data.convert import nrrd_to_nifti
    from scseg.inference import LoadedModel, volume

    whole_scan = nrrd_to_nifti(raw_samples / "tumour3d" / "brain1_image.nrrd", tmp_path / "b.nii")
    source = tmp_path / "brain1_centre.nii.gz"
    nib.save(whole_scan.slicer[64:192, 64:192, :], source)  # the slicer keeps world positions
    info = {"patch_size": [32, 32, 8], "spacing": [1.5, 1.5, 5.0], "intensity": "zscore"}
    model = LoadedModel(torch.nn.Identity(), 3, 1, 137, {}, info)
    pre, data = volume.preprocess_volume(model, source)
    image = data["image"]
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(137, *image.shape[1:], generator=g) * 3
    logits[5:9] = logits[5:6]  # exact ties between classes 5..8, spanning two chunks
    probs = torch.softmax(logits, 0)
    del logits
    shape = volume._input_geometry(source)[1]
    monkeypatch.setattr(inversion, "CLASS_CHUNK_ELEMENTS", 7 * int(np.prod(shape)))  # 7 a chunk
    labels, full = volume._invert_argmax(pre, image, probs, shape, keep=True)

    whole = MetaTensor(probs, meta=dict(image.meta))
    whole.applied_operations = list(image.applied_operations)
    inverted = T.Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False)(
        {"image": image, "pred": whole}
    )["pred"].as_tensor().float().numpy()  # fmt: skip
    # the separable resampler (these grids are aligned): MONAI's values to float rounding
    np.testing.assert_array_equal(labels, inverted.argmax(0))
    np.testing.assert_allclose(full, np.moveaxis(inverted, 0, -1), rtol=1e-5, atol=1e-7)
    assert len(np.unique(labels)) > 100
    # MONAI's inversion a few classes at a time: exactly all classes at once
    monkeypatch.setattr(volume, "checked_resampler", lambda *args: None)
    labels, full = volume._invert_argmax(pre, image, probs, shape, keep=True)
    np.testing.assert_array_equal(labels, inverted.argmax(0))
    np.testing.assert_array_equal(full, np.moveaxis(inverted, 0, -1))


@pytest.mark.parametrize("name", list(GRIDS))
def test_streamed_prediction_equals_the_whole_volume_path(name, tmp_path) -> None:
    """Logits streamed slab by slab, turned into probabilities in place and inverted a few
    classes at a time give the labels of the path that held everything at once (MONAI's
    sliding window, softmax, ``Invertd`` over all classes), on every grid: LPS,
    anisotropic, oblique."""
    import torch
    from monai import transforms as T
    from monai.data import MetaTensor
    from monai.inferers import sliding_window_inference

    from scseg.inference import LoadedModel, volume
    from scseg.models import create_model

    path, _ = _sphere_volume(tmp_path, name)
    torch.manual_seed(0)
    net = create_model("unet", spatial_dims=3, in_channels=1, classes=5, channels=(4, 8, 16))
    info = {"patch_size": [16, 16, 16], "spacing": [1.5, 1.5, 1.5], "intensity": "zscore"}
    model = LoadedModel(net.eval(), 3, 1, 5, {}, info)
    result = predict_volume(model, path, overlap=0.5, sw_batch_size=3, probabilities=True)

    pre, data = volume.preprocess_volume(model, path)
    image = data["image"]
    with torch.inference_mode():
        logits = sliding_window_inference(image.as_tensor()[None].float(), (16, 16, 16), 3,
                                          net, overlap=0.5, mode="gaussian")  # fmt: skip
        probs = MetaTensor(torch.softmax(logits, 1)[0], meta=dict(image.meta))
    probs.applied_operations = list(image.applied_operations)
    inverted = T.Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False)(
        {"image": image, "pred": probs}
    )["pred"].as_tensor().float().numpy()  # fmt: skip
    labels = np.asarray(result.labels.dataobj)
    np.testing.assert_array_equal(labels, inverted.argmax(0))
    # Softmax plane by plane rounds a few values differently from softmax over the whole
    # volume (CPU kernels vectorise by block): by one float32 step, never more.
    np.testing.assert_allclose(np.asarray(result.probabilities.dataobj),
                               np.moveaxis(inverted, 0, -1), rtol=0, atol=2e-7)  # fmt: skip
    assert len(np.unique(labels)) > 1


def test_labels_alone_map_back_only_the_boundaries_and_agree_exactly(raw_samples, tmp_path):
    """Labels alone: where the coarse voxels around an input voxel agree on a class with a
    margin, that class is its label without mapping the other classes back; the label map
    equals, voxel for voxel, the one of mapping every class back (the probabilities' path),
    on 12 smooth regions of a real MR volume's grid; noise, all boundary, is left to it."""
    import torch

    from scseg.data.convert import nrrd_to_nifti
    from scseg.inference import LoadedModel, volume
    from scseg.inference.inversion import checked_resampler, settled_argmax

    whole_scan = nrrd_to_nifti(raw_samples / "tumour3d" / "brain1_image.nrrd", tmp_path / "b.nii")
    source = tmp_path / "brain1_centre.nii.gz"
    nib.save(whole_scan.slicer[64:192, 64:192, :], source)
    info = {"patch_size": [32, 32, 8], "spacing": [1.5, 1.5, 5.0], "intensity": "zscore"}
    model = LoadedModel(torch.nn.Identity(), 3, 1, 12, {}, info)
    pre, data = volume.preprocess_volume(model, source)
    image = data["image"]
    shape = volume._input_geometry(source)[1]
    g = torch.Generator().manual_seed(0)
    grid = torch.stack(torch.meshgrid(*[torch.linspace(0, 1, n) for n in image.shape[1:]],
                                      indexing="ij"))  # fmt: skip
    centres = torch.rand(12, 3, 1, 1, 1, generator=g)
    probs = torch.softmax(-((grid[None] - centres) ** 2).sum(1) * 400, 0)  # smooth regions
    probs[7, :8] = probs[6, :8]  # two classes tied in a slab: the lower one wins, as in argmax
    labels, _ = volume._invert_argmax(pre, image, probs, shape)
    everything, _ = volume._invert_argmax(pre, image, probs, shape, keep=True)
    np.testing.assert_array_equal(labels, everything)
    assert len(np.unique(labels)) > 8
    resample = checked_resampler(pre, image, shape)
    assert settled_argmax(probs, resample, shape) is not None  # the shortcut was taken
    noise = torch.softmax(torch.randn(12, *image.shape[1:], generator=g), 0)
    assert settled_argmax(noise, resample, shape) is None  # boundaries everywhere
    noise[5, :4] = noise[3, :4]  # ties: the lower class, tile by tile as over whole classes
    tiled, _ = volume._invert_argmax(pre, image, noise, shape)  # every class, in tiles
    np.testing.assert_array_equal(tiled, volume._invert_argmax(pre, image, noise, shape, True)[0])
