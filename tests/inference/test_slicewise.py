"""2D networks over volumes, slice by slice: training on slices, validation and prediction
on whole volumes in the volume's own geometry, with the class names beside the labels."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from scseg.cli import main
from scseg.inference import load_model
from scseg.models.slabs import gather, slicewise_slabs

from ..conftest import REPO


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slicewise_equals_a_loop_over_slices(axis) -> None:
    torch.manual_seed(0)
    net = torch.nn.Conv2d(2, 3, 3, padding=1)
    x = torch.randn(1, 2, 5, 6, 7)
    expected = torch.stack([net(x.select(axis + 2, k)) for k in range(x.shape[axis + 2])],
                           dim=axis + 2)  # fmt: skip
    slabs = list(slicewise_slabs(net, x, axis, batch_size=2))
    assert [(a, start, stop) for a, start, stop, _ in slabs][:2] == [(axis, 0, 2), (axis, 2, 4)]
    torch.testing.assert_close(gather(iter(slabs)), expected)


class _Recorder(torch.nn.Module):
    """A network with SMP's divisor of 32 that keeps what it was given and returns it."""

    size_divisor = 32

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.unused = torch.nn.Parameter(torch.zeros(()))  # a device to be on

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return x * 2


def test_a_slice_smaller_than_the_patch_is_placed_as_in_training() -> None:
    """With the training patch, the network sees each slice where training's SpatialPad put
    it (centred in the patch); the logits are cut back to the slice. Without it, the slice
    sits at the corner of a canvas padded only to the divisor."""
    from monai.transforms import SpatialPad

    x = torch.randn(1, 1, 38, 102, 3)  # slices of 38 x 102, as the tumour sample's breast
    net = _Recorder()
    out = gather(slicewise_slabs(net, x, 2, batch_size=3, patch=(256, 256)))
    torch.testing.assert_close(out, 2 * x)
    trained = torch.stack([SpatialPad((256, 256))(x[0, ..., k]) for k in range(3)])
    torch.testing.assert_close(net.seen[0], trained)
    corner = _Recorder()
    gather(slicewise_slabs(corner, x, 2, batch_size=3))
    assert corner.seen[0].shape[-2:] == (64, 128) and torch.equal(corner.seen[0][0, 0, :38, :102],
                                                                  x[0, 0, ..., 0])  # fmt: skip
    # larger than the patch along one axis: the divisor's padding, centred
    wide = torch.randn(1, 1, 300, 40, 1)
    gather(slicewise_slabs(net, wide, 2, patch=(256, 256)))
    assert net.seen[-1].shape[-2:] == (320, 256)
    torch.testing.assert_close(net.seen[-1][0, 0, 10:310, 108:148], wide[0, 0, ..., 0])


def test_an_image_smaller_than_the_patch_is_placed_as_in_training(tmp_path) -> None:
    """A 2D image model (Folder2DDataModule) trains on images padded centred by
    albumentations' PadIfNeeded; prediction (``predict_image``) and validation see a small
    image at that same place, and give back its own size."""
    import albumentations as A
    from PIL import Image

    from scseg.inference import LoadedModel, predict_image
    from scseg.training import SegmentationModule

    image = np.random.default_rng(0).integers(0, 255, (20, 37), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "small.png")
    net = _Recorder()
    model = LoadedModel(net, 2, 1, 1, {}, {"patch_size": [64, 64], "normalization": "none"})
    _, probs = predict_image(model, tmp_path / "small.png")
    trained = A.PadIfNeeded(64, 64, border_mode=0, fill=0)(image=image.astype(np.float32))
    assert net.seen[0].shape == (1, 1, 64, 64)
    np.testing.assert_array_equal(net.seen[0][0, 0].numpy(), trained["image"])
    assert probs.shape == (1, 20, 37)
    module = SegmentationModule(
        arch="unet", spatial_dims=2, classes=1, loss="ce", model_options={"channels": [4, 8]}
    )
    module.net, module.data_info = _Recorder(), {"patch_size": [64, 64]}
    x = torch.from_numpy(image.astype(np.float32))[None, None]
    with torch.inference_mode():
        module._shared_step({"image": x, "label": torch.zeros(1, 1, 20, 37).long()}, "val")
    torch.testing.assert_close(module.net.seen[0][0, 0], torch.from_numpy(trained["image"]))


@pytest.fixture(scope="module")
def slice_checkpoint(data_env, tmp_path_factory):
    """The 2D parcellation config, briefly trained at 4 mm (137 classes, coronal slices)."""
    root = tmp_path_factory.mktemp("parcellation2d")
    args = [
        "fit", "--config", str(REPO / "configs" / "brain_parcellation_2d.yaml"),
        "--trainer.default_root_dir", str(root), "--trainer.max_epochs", "1",
        "--trainer.limit_train_batches", "2", "--trainer.check_val_every_n_epoch", "1",
        "--data.init_args.spacing", "[4, 4, 4]", "--data.init_args.patch_size", "[32, 32]",
        "--data.init_args.batch_size", "4",
    ]  # fmt: skip
    assert main(args) == 0
    return root


def test_every_class_goes_to_the_per_class_csv(slice_checkpoint) -> None:
    csv = next(slice_checkpoint.glob("logs/version_*/val_per_class.csv")).read_text()
    lines = csv.splitlines()
    assert lines[0] == "class,index,dice,iou,global_dice,voxels"
    assert len(lines) == 1 + 136 and lines[1].startswith("3rd_Ventricle,1,")


def test_prediction_on_another_template_keeps_its_geometry_and_names(
    slice_checkpoint, data_env, tmp_path
) -> None:
    ckpt = slice_checkpoint / "checkpoints" / "last.ckpt"
    model = load_model(ckpt)
    assert model.spatial_dims == 2 and model.slice_axis == 1 and model.input_dims == 3
    raw = data_env / "samples" / "brain_parcellation3d"
    # The FSL template as stored (LAS), and the same voxels re-stored RAS: same labels.
    las = nib.load(raw / "MNI152_T1_1mm_brain.nii.gz").slicer[40:140, 50:170, 30:130]
    ras = nib.as_closest_canonical(las)
    assert nib.aff2axcodes(las.affine) == ("L", "A", "S")
    inputs = tmp_path / "in"
    inputs.mkdir()
    nib.save(las, inputs / "las.nii.gz")
    nib.save(ras, inputs / "ras.nii.gz")
    out = tmp_path / "out"
    args = ["predict", "--quiet", "--checkpoint", str(ckpt), "--input", str(inputs),
            "--output", str(out), "--sw-batch-size", "64"]  # fmt: skip
    assert main(args) == 0
    for name, source in (("las", las), ("ras", ras)):
        labels = nib.load(out / f"{name}.nii.gz")
        np.testing.assert_array_equal(labels.affine, source.affine)
        assert labels.shape == source.shape and labels.get_data_dtype() == np.uint8
        table = (out / f"{name}.tsv").read_text().splitlines()
        assert table[:3] == ["index\tname", "0\tbackground", "1\t3rd_Ventricle"]
        assert len(table) == 1 + 137
    on_las = np.asarray(nib.load(out / "las.nii.gz").dataobj)
    on_ras = np.asarray(nib.load(out / "ras.nii.gz").dataobj)
    np.testing.assert_array_equal(on_las[::-1], on_ras)  # RAS stores L-R mirrored
