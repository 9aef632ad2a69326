"""Register then refine: an untrained label-prior model predicts its prior exactly, the
network learns only the correction, and the atlas registration puts the atlas labels on a
moved subject's own grid."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from scseg.evaluation import mean_dice
from scseg.models import LabelPrior, create_model

from ..fakes import ellipsoid_subject


def _prior_input(classes: int = 5, size: int = 16) -> torch.Tensor:
    torch.manual_seed(0)
    image = torch.randn(2, 1, size, size, size)
    labels = torch.randint(0, classes, (2, 1, size, size, size)).float()
    return torch.cat([image, labels], 1)


@pytest.mark.parametrize(("deep_supervision", "at"), [(0, "input"), (1, "input"), (2, "own")])
def test_an_untrained_model_predicts_its_prior(deep_supervision, at) -> None:
    """At every head: with ``deep_supervision_at="own"``, the prior at that head's grid."""
    net = create_model("unet", spatial_dims=3, in_channels=1, classes=5,
                       channels=(8, 16, 32, 32), label_prior=True,
                       deep_supervision=deep_supervision, deep_supervision_at=at)  # fmt: skip
    assert isinstance(net, LabelPrior)
    x = _prior_input()
    net.train()
    outs = net(x)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    assert len(outs) == 1 + deep_supervision
    for i, out in enumerate(outs):
        step = 2**i if at == "own" else 1
        assert out.shape == (2, 5, *[16 // step] * 3)
        torch.testing.assert_close(out.argmax(1), x[:, 1, ::step, ::step, ::step].long())
    # the correction is learnt: one step moves the output away from the prior alone
    loss = torch.nn.functional.cross_entropy(outs[0], torch.zeros(2, 16, 16, 16).long())
    loss.backward()
    assert net.net.head.weight.grad.abs().sum() > 0
    assert net.strength.grad is not None


def test_the_correction_is_the_output_without_the_prior() -> None:
    """What inference adds to a prior on another grid: forward = correction + prior."""
    net = create_model("unet", spatial_dims=3, in_channels=1, classes=5, channels=(8, 16, 32),
                       label_prior=True, deep_supervision=1)  # fmt: skip
    torch.nn.init.normal_(net.net.head.weight)  # a trained model's head is not zero
    net.eval()
    x = _prior_input()
    with torch.no_grad():
        prior = net.strength * torch.nn.functional.one_hot(x[:, 1].long(), 5).movedim(-1, 1)
        correction = net.correction(x)
        assert correction.abs().sum() > 0
        torch.testing.assert_close(net(x), correction + prior)
        net.train()  # with deep supervision: the main head's
        torch.testing.assert_close(net(x)[0], net.correction(x) + prior)


def test_a_plain_model_is_not_wrapped_and_the_option_reaches_checkpoints() -> None:
    from scseg.training.module import SegmentationModule

    options = {"channels": [8, 16], "label_prior": True}
    module = SegmentationModule(arch="unet", spatial_dims=3, in_channels=1, classes=3,
                                model_options=options)  # fmt: skip
    assert module.architecture["label_prior"] is True
    assert isinstance(module.net, LabelPrior)
    rebuilt = create_model("unet", **module.architecture)
    rebuilt.load_state_dict(module.net.state_dict())  # same keys, same shapes
    plain = create_model("unet", spatial_dims=3, in_channels=1, classes=3, channels=(8, 16))
    assert not isinstance(plain, LabelPrior)
    # the prior's starting logit is an option; it needs a prior
    module = SegmentationModule(arch="unet", spatial_dims=3, in_channels=1, classes=3,
                                model_options={**options, "prior_strength": 2.5})  # fmt: skip
    assert module.architecture["prior_strength"] == 2.5 and module.net.strength.item() == 2.5
    assert create_model("unet", **module.architecture).strength.item() == 2.5
    with pytest.raises(ValueError, match=r"prior_strength needs model_options\.label_prior"):
        SegmentationModule(arch="unet", spatial_dims=3, in_channels=1, classes=3,
                           model_options={"channels": [8, 16], "prior_strength": 2.5})  # fmt: skip


def test_the_registered_atlas_lands_on_a_moved_subject(tmp_path) -> None:
    from scseg.atlas.registration import prior_path, register_labels

    atlas_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    atlas_affine[:3, 3] = -40
    subject_affine = atlas_affine.copy()
    subject_affine[:3, 3] = -39  # another grid, half a voxel away
    image, labels = ellipsoid_subject(0.0, atlas_affine)
    moved, truth = ellipsoid_subject(9.0, subject_affine)
    for name, data, affine in (("atlas", image, atlas_affine), ("atlas_labels", labels,
                               atlas_affine), ("subject", moved, subject_affine)):  # fmt: skip
        nib.save(nib.Nifti1Image(data, affine), tmp_path / f"{name}.nii.gz")
    out = prior_path(tmp_path / "priors", tmp_path / "subject.nii.gz", tmp_path / "atlas.nii.gz")
    written = register_labels(tmp_path / "subject.nii.gz", tmp_path / "atlas.nii.gz",
                              tmp_path / "atlas_labels.nii.gz", out)  # fmt: skip
    result = nib.load(written)
    np.testing.assert_allclose(result.affine, subject_affine)  # the subject's own grid
    assert result.shape == moved.shape
    warped = np.asarray(result.dataobj)
    copied = labels  # the atlas's labels by voxel, which the shift puts off
    # a coarse toy (40 voxels, registered at 4 and 2 times coarser): 0.84 against 0.48
    assert mean_dice(truth, warped) > 0.8 > mean_dice(truth, copied) + 0.3
    assert not list(out.parent.glob("*.partial*"))
    # affine, then demons: on the subject's grid too, and no worse on this toy
    again = register_labels(tmp_path / "subject.nii.gz", tmp_path / "atlas.nii.gz",
                            tmp_path / "atlas_labels.nii.gz", tmp_path / "deformable.nii.gz",
                            "deformable")  # fmt: skip
    assert nib.load(again).shape == moved.shape
    assert mean_dice(truth, np.asarray(nib.load(again).dataobj)) > 0.8
    with pytest.raises(ValueError, match="registration must be one of"):
        register_labels(tmp_path / "subject.nii.gz", tmp_path / "atlas.nii.gz",
                        tmp_path / "atlas_labels.nii.gz", tmp_path / "x.nii.gz",
                        "rigid")  # fmt: skip


def test_an_unreadable_subject_is_named(tmp_path) -> None:
    from scseg.atlas.registration import register_labels

    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a volume")
    with pytest.raises(ValueError, match=r"broken\.nii\.gz: cannot read for registration"):
        register_labels(bad, bad, bad, tmp_path / "out.nii.gz")
    assert not (tmp_path / "out.nii.gz").exists()
