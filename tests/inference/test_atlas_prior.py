"""``scseg predict`` with a model that refines a registered atlas: it registers the atlas
it was trained with (or the one given) to each input, and writes labels on the input's own
grid; what it cannot use is named in one line."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from scseg.cli import main
from scseg.evaluation import mean_dice

from ..fakes import ellipsoid_dataset


@pytest.fixture(scope="module")
def prior_checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("atlas-prior")
    root = ellipsoid_dataset(tmp / "ellipsoids", {"atlas": 0.0, "moved": 9.0})
    args = ["fit", "--model.arch", "unet", "--model.spatial_dims", "3", "--model.classes", "3",
            "--model.model_options", '{"channels": [8, 16], "label_prior": true}',
            "--data", "scseg.data.MSD3DDataModule", "--data.root", str(root),
            "--data.classes", "3", "--data.label_prior", "true", "--data.patch_size",
            "[16, 16, 16]", "--data.intensity", "zscore", "--data.cache_dir",
            str(tmp / "cache"), "--trainer.max_epochs", "1", "--trainer.default_root_dir",
            str(tmp / "run")]  # fmt: skip
    assert main(args) == 0
    return tmp / "run" / "checkpoints" / "last.ckpt", root


def test_predict_registers_the_atlas_and_keeps_the_input_grid(prior_checkpoint, tmp_path):
    checkpoint, root = prior_checkpoint
    # the subject on a grid of its own: another origin and voxel order (LAS)
    source = nib.load(root / "imagesTr" / "moved.nii.gz")
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = source.shape[0] - 1
    affine = source.affine @ flip
    affine[:3, 3] += 3.0
    subject = tmp_path / "subject.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(source.dataobj)[::-1].copy(), affine), subject)
    assert main(["predict", "--checkpoint", str(checkpoint), "--input", str(subject),
                 "--output", str(tmp_path / "out"), "--quiet"]) == 0  # fmt: skip
    written = nib.load(tmp_path / "out" / "subject.nii.gz")
    np.testing.assert_allclose(written.affine, affine)
    assert written.shape == source.shape
    truth = np.asarray(nib.load(root / "labelsTr" / "moved.nii.gz").dataobj)[::-1]
    atlas = np.asarray(nib.load(root / "labelsTr" / "atlas.nii.gz").dataobj)[::-1]
    predicted = np.asarray(written.dataobj)
    assert mean_dice(truth, predicted) > 0.75 > mean_dice(truth, atlas) + 0.2


def test_a_missing_atlas_or_a_model_without_one_is_named(prior_checkpoint, ckpt_3d, tmp_path,
                                                         capsys):  # fmt: skip
    checkpoint, root = prior_checkpoint
    subject = root / "imagesTr" / "moved.nii.gz"
    gone = tmp_path / "gone.nii.gz"
    code = main(["predict", "--checkpoint", str(checkpoint), "--input", str(subject),
                 "--output", str(tmp_path / "a"), "--atlas", str(gone), str(gone)])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert f"{gone}: the model's atlas image is not on this machine" in err
    assert "Traceback" not in err and not (tmp_path / "a" / "moved.nii.gz").exists()
    code = main(["predict", "--checkpoint", str(ckpt_3d), "--input", str(subject), "--output",
                 str(tmp_path / "b"), "--atlas", str(subject), str(subject)])  # fmt: skip
    assert code != 0
    err = capsys.readouterr().err
    assert "does not refine an atlas" in err and "Traceback" not in err


def test_attention_figures_of_an_atlas_prior_model(prior_checkpoint, tmp_path) -> None:
    checkpoint, root = prior_checkpoint
    subject = root / "imagesTr" / "moved.nii.gz"
    args = ["attention", "--checkpoint", str(checkpoint), "--input", str(subject), "--output",
            str(tmp_path / "maps")]  # fmt: skip
    assert main(args) == 0
    assert list((tmp_path / "maps").glob("*.png"))


def test_an_untrained_model_predicts_the_registration_on_the_input_grid(prior_checkpoint,
                                                                        tmp_path):  # fmt: skip
    """The correction is predicted at the training spacing and the prior added on the
    input's own grid, so a model with zero heads writes the registered atlas exactly, voxel
    for voxel, though it predicts on a grid twice as coarse (where the prior down and back
    would lose the structures' edges); its probabilities are the softmax of the same sums."""
    from scseg.inference import load_model
    from scseg.inference.volume import atlas_prior, predict_volume
    from scseg.models import LabelPrior

    checkpoint, root = prior_checkpoint
    model = load_model(checkpoint)
    model.net = LabelPrior(model.net.net, model.classes).eval()  # heads zeroed
    model.data_info["spacing"] = [2.0, 2.0, 2.0]  # as the atlas's voxels
    # the subject at 1 mm, in LPS voxel order, where the model predicts at 2 mm
    source = nib.load(root / "imagesTr" / "moved.nii.gz")
    fine = np.repeat(np.repeat(np.repeat(np.asarray(source.dataobj), 2, 0), 2, 1), 2, 2)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine[:3, 3] = [40.0, 40.0, -40.0]
    subject = tmp_path / "subject.nii.gz"
    nib.save(nib.Nifti1Image(fine[::-1, ::-1].copy(), affine), subject)
    expected = np.asarray(nib.load(atlas_prior(model, subject, tmp_path)).dataobj)
    assert len(np.unique(expected)) == 3
    out = predict_volume(model, subject, probabilities=True)
    labels = np.asarray(out.labels.dataobj)
    np.testing.assert_array_equal(labels, expected)
    probs = np.asarray(out.probabilities.dataobj)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(-1), labels)


def test_the_axis_resampler_maps_back_as_monai_does(tmp_path) -> None:
    """On an oblique, anisotropic grid in another voxel order, the separable resampler gives
    MONAI's inversion of the preprocessing (orientation, spacing), borders included; it
    refuses grids that are not aligned axis by axis, and then MONAI maps every channel."""
    import torch
    from monai import transforms as T
    from scipy.spatial.transform import Rotation

    from scseg.data.volumes3d import preprocessing
    from scseg.inference import inversion
    from scseg.inference.inversion import inverted_chunks

    rotation = Rotation.from_euler("xyz", [10, -20, 30], degrees=True).as_matrix()
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([1.0, 1.3, 0.9]) @ np.array([[0, 1, 0], [-1, 0, 0],
                                                                     [0, 0, 1]])  # fmt: skip
    affine[:3, 3] = [5, -7, 3]
    shape = (41, 37, 29)
    rng = np.random.default_rng(0)
    nib.save(nib.Nifti1Image(rng.normal(size=shape).astype(np.float32), affine),
             tmp_path / "x.nii.gz")  # fmt: skip
    pre = T.Compose(preprocessing(["image"], (2.0, 2.0, 2.0), "zscore", None, True))
    image = pre({"image": str(tmp_path / "x.nii.gz")})["image"]
    values = torch.randn(5, *image.shape[1:], generator=torch.Generator().manual_seed(0))
    reference = torch.cat([chunk for _, chunk in inverted_chunks(pre, image, values, shape)])
    resample = inversion.AxisResampler(image.affine, image.shape[1:], affine, shape)
    torch.testing.assert_close(resample(values), reference, atol=1e-5, rtol=0)
    resample = inversion.checked_resampler(pre, image, shape)
    assert resample is not None
    chunks = list(inversion.resampled_chunks(pre, image, values, shape, resample))
    torch.testing.assert_close(torch.cat([c for _, c in chunks]), reference, atol=1e-5, rtol=0)
    turned = affine.copy()
    turned[:3, :3] = Rotation.from_euler("z", 20, degrees=True).as_matrix() @ affine[:3, :3]
    with pytest.raises(ValueError, match="not aligned"):
        inversion.AxisResampler(image.affine, image.shape[1:], turned, shape)
    # a resampler that maps the ramps elsewhere than MONAI does is not used: MONAI maps all
    with pytest.MonkeyPatch.context() as mp:
        elsewhere = lambda self, v: reference[:1].expand(len(v), *shape)  # noqa: E731
        mp.setattr(inversion.AxisResampler, "__call__", elsewhere)
        assert inversion.checked_resampler(pre, image, shape) is None
        chunks = list(inversion.resampled_chunks(pre, image, values, shape, None))
    torch.testing.assert_close(torch.cat([c for _, c in chunks]), reference, atol=0, rtol=0)


def test_the_prior_argmax_maps_back_only_what_can_change_and_agrees_exactly() -> None:
    """The label map found by mapping back only the voxels where a correction could overturn
    the prior is, voxel for voxel, the one found by mapping every class back; a voxel's
    values interpolated alone, and each voxel's own class, are bit-for-bit the whole
    resampling's; corrections that
    could overturn most of the prior leave it to the whole mapping (``None``)."""
    import torch

    from scseg.inference import inversion, prior
    from scseg.inference.argmax import running_argmax

    # coarse (2 mm) grid to a 1 mm grid in another voxel order: permuted and flipped axes
    source_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    target_affine = np.zeros((4, 4))
    target_affine[:3, :3] = [[0, -1, 0], [0, 0, 1], [1, 0, 0]]
    target_affine[:, 3] = [30, 1, 2, 1]
    coarse, shape = (12, 15, 10), (19, 23, 29)
    resample = inversion.AxisResampler(source_affine, coarse, target_affine, shape)
    generator = torch.Generator().manual_seed(0)
    classes, strength = 9, 4.0
    labels = torch.randint(0, classes, shape, generator=generator).numpy()
    logits = prior.PriorLogits(labels, strength, classes)
    corrections = torch.randn(classes, *coarse, generator=generator) * 0.3
    corrections[:, 3:6, 4:9, 2:5] *= 20  # a region where the network overturns the prior
    points = torch.stack([torch.randint(0, n, (500,), generator=generator) for n in shape], 1)
    whole = resample(corrections)
    assert torch.equal(resample.at(corrections, points), whole[(slice(None), *points.T)])
    reference, _ = running_argmax(((c, v[None]) for c, v in enumerate(whole)), shape, classes)
    np.testing.assert_array_equal(resample.argmax(corrections).numpy(), reference)  # in tiles
    own = torch.from_numpy(labels).long()
    assert torch.equal(resample.at_labels(corrections, own), whole.gather(0, own[None])[0])

    def summed():
        for c, values in enumerate(resample(corrections)):
            yield c, logits.add_(c, values.clone())[None]

    expected, _ = running_argmax(summed(), shape, classes)
    found = prior.prior_argmax(corrections, resample, logits, shape)
    np.testing.assert_array_equal(found, expected)
    changed = found != labels
    assert 0 < changed.mean() < 0.1  # the overturned region, and nothing else
    assert prior.prior_argmax(corrections * 100, resample, logits, shape) is None
    # no correction (an untrained model's zero heads): the prior, with nothing mapped back
    np.testing.assert_array_equal(
        prior.prior_argmax(torch.zeros_like(corrections), resample, logits, shape), labels
    )
