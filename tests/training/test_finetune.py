"""``model.init_from``: what is loaded, adapted and re-initialised; dimensions never mixed;
the encoder frozen and loaded layers slowed when asked; from the CLI, one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from scseg.cli import main
from scseg.inference.package import write_package
from scseg.models import create_model
from scseg.training.finetune import adapt_input_channels, init_from

from ..conftest import REPO

UNET = {"channels": (8, 16, 32)}


def _checkpoint(
    path, spatial_dims=3, in_channels=1, classes=3, arch="unet", options=UNET, slice_axis=None
):
    """A minimal scseg checkpoint of a freshly initialised network, as training saves it."""
    torch.manual_seed(0)
    architecture = {
        "spatial_dims": spatial_dims,
        "in_channels": in_channels,
        "classes": classes,
        "attention": "scse",
        **options,
    }
    net = create_model(arch, **architecture)
    hparams = {
        "arch": arch,
        **{k: architecture[k] for k in ("spatial_dims", "in_channels", "classes", "attention")},
    }
    info = {"class_names": [f"c{i}" for i in range(classes)], "slice_axis": slice_axis}
    torch.save(
        {
            "hyper_parameters": hparams,
            "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
            "scseg": {"architecture": architecture, "data_info": info},
        },
        path,
    )
    return path, net.state_dict()


def _net(spatial_dims=3, in_channels=1, classes=3, arch="unet", options=UNET):
    torch.manual_seed(1)
    return create_model(
        arch,
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        classes=classes,
        attention="scse",
        **options,
    )


def test_matching_tensors_load_heads_reset_first_conv_adapted(tmp_path) -> None:
    path, source = _checkpoint(tmp_path / "src.ckpt")
    net = _net(in_channels=2, classes=5)
    fresh = {k: v.clone() for k, v in net.state_dict().items()}
    report = init_from(net, path, "unet", 3, 2, 5)
    state = net.state_dict()
    assert report.reinitialised == ["head.weight", "head.bias"]
    assert report.adapted == ["encoder.stages.0.conv1.conv.weight"]
    assert not report.skipped
    for name in report.loaded:
        assert torch.equal(state[name], source[name]), name
    for name in report.reinitialised:
        assert torch.equal(state[name], fresh[name])
    first = source["encoder.stages.0.conv1.conv.weight"]  # (8, 1, 3, 3, 3) -> (8, 2, 3, 3, 3)
    adapted = state["encoder.stages.0.conv1.conv.weight"]
    torch.testing.assert_close(adapted, first.repeat(1, 2, 1, 1, 1) / 2)
    # the summed response to a constant input is kept
    torch.testing.assert_close(adapted.sum(1), first.sum(1))


def test_adapting_three_channels_to_one_sums_them() -> None:
    weight = torch.randn(4, 3, 3, 3)
    torch.testing.assert_close(adapt_input_channels(weight, 1), weight.sum(1, keepdim=True))


def test_a_package_can_start_a_model(tmp_path) -> None:
    path, source = _checkpoint(tmp_path / "src.ckpt")
    package = write_package([path], tmp_path / "src.scseg")
    net = _net()
    report = init_from(net, package, "unet", 3, 1, 3)
    assert not report.reinitialised and not report.adapted and not report.skipped
    assert all(torch.equal(net.state_dict()[k], v) for k, v in source.items())


def test_a_slicewise_2d_model_starts_an_image_model(tmp_path) -> None:
    options = {"encoder_name": "resnet18", "decoder_channels": (32, 16, 16, 8, 8)}
    path, source = _checkpoint(tmp_path / "s.ckpt", 2, 1, 4, "smp_unet", options, slice_axis=2)
    net = _net(2, 3, 2, "smp_unet", options)
    report = init_from(net, path, "smp_unet", 2, 3, 2)
    assert report.adapted == ["encoder.encoder.conv1.weight"]
    assert len(report.loaded) == len(source) - 3  # all but the head's two and conv1


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"spatial_dims": 2, "options": {"channels": (8, 16, 32)}},
            "a 2D model cannot start a 3D one",
        ),
        ({"arch": "resunet"}, "a 'resunet' model cannot start an 'unet' one"),
        (
            {"options": {"channels": (4, 4, 4)}, "in_channels": 5, "classes": 7},
            "of this model's weights fit it",
        ),
    ],
)
def test_what_cannot_start_a_model_is_refused(source, message, tmp_path) -> None:
    path, _ = _checkpoint(tmp_path / "src.ckpt", **source)
    with pytest.raises(ValueError, match=message) as err:
        init_from(_net(), path, "unet", 3, 1, 3)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def _fit(root, *extra):
    args = [
        "fit",
        "--config",
        str(REPO / "configs" / "quickstart_3d.yaml"),
        "--trainer.default_root_dir",
        str(root),
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "2",
        "--trainer.limit_val_batches",
        "0",
        "--trainer.enable_progress_bar",
        "false",
        "--data.init_args.patch_size",
        "[32, 32, 32]",
        "--data.init_args.repeats",
        "1",
        "--data.init_args.samples_per_volume",
        "1",
        *extra,
    ]
    return main(args)


def _weights(ckpt):
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    return {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}


@pytest.mark.parametrize("mode", ["freeze_encoder", "init_lr_scale_0"])
def test_fit_from_a_checkpoint_keeps_what_it_is_told_to(
    mode, ckpt_3d, data_env, tmp_path, capsys
) -> None:
    extra = (
        ["--model.freeze_encoder_epochs", "1"]
        if mode == "freeze_encoder"
        else ["--model.init_lr_scale", "0"]
    )
    assert (
        _fit(
            tmp_path,
            "--model.init_from",
            str(ckpt_3d),
            "--model.classes",
            "4",
            "--data.init_args.classes",
            "4",
            "--data.init_args.class_names",
            '["bg", "grey", "white", "none"]',
            *extra,
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "model.init_from" in out and "re-initialised (classes)" in out
    before, after = _weights(ckpt_3d), _weights(tmp_path / "checkpoints" / "last.ckpt")
    encoder = [k for k in after if k.startswith("encoder.")]
    decoder = [k for k in after if k.startswith("decoder.") and k.endswith("weight")]
    assert encoder and all(torch.equal(after[k], before[k]) for k in encoder)
    if mode == "init_lr_scale_0":  # every loaded tensor kept, the new head trained
        assert all(torch.equal(after[k], before[k]) for k in decoder)
    else:  # the decoder trains while the encoder waits
        assert any(not torch.equal(after[k], before[k]) for k in decoder)
    assert after["head.weight"].shape[0] == 4


def test_fit_with_a_model_of_other_dimensions_fails_in_one_line(
    ckpt_2d, data_env, tmp_path, capsys
) -> None:
    assert _fit(tmp_path / "run", "--model.init_from", str(ckpt_2d)) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err.count("\n") == 0 and "a 2D model cannot start a 3D one" in err and str(ckpt_2d) in err
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "names",
    [["background", "white matter", "grey matter"],
     ["background", "grey matter", "white matter", "lesion"]],
)  # fmt: skip
def test_heads_follow_the_class_names(names, ckpt_3d, data_env, tmp_path, capsys) -> None:
    """init_from once loaded the heads whenever the class counts matched, so a reordered
    class list trained from grey matter's row for white matter. Each row now goes to the
    class of its name; a class the source does not name starts fresh."""
    source = ["background", "grey matter", "white matter"]
    assert torch.load(ckpt_3d, weights_only=True)["scseg"]["data_info"]["class_names"] == source
    k = str(len(names))
    assert _fit(tmp_path, "--model.init_from", str(ckpt_3d), "--model.lr", "0",
                "--model.classes", k, "--data.init_args.classes", k,
                "--data.init_args.class_names", json.dumps(names)) == 0  # fmt: skip
    assert "head rows matched by name" in capsys.readouterr().out
    before, after = _weights(ckpt_3d), _weights(tmp_path / "checkpoints" / "last.ckpt")
    heads = [k for k in after if k.startswith(("head.", "aux_heads."))]
    assert heads
    for key in heads:
        for i, name in enumerate(names):
            if name in source:
                assert torch.equal(after[key][i], before[key][source.index(name)]), (key, name)
            else:
                assert not any(torch.equal(after[key][i], row) for row in before[key])
