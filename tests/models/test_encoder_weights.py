"""Local encoder weight files load safely (weights_only) and must fit the encoder."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from segmentation_models_pytorch.encoders import get_encoder

import scseg


@pytest.fixture(scope="module")
def resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    return get_encoder("resnet18", in_channels=3, weights=None).state_dict()


def _build(weights: str, in_channels: int = 3):
    return scseg.create_model(
        "smp_unet", spatial_dims=2, in_channels=in_channels, classes=2, encoder_name="resnet18",
        encoder_weights=weights,
    )  # fmt: skip


@pytest.mark.parametrize("fmt", ["pth", "safetensors", "smp-model-prefix"])
def test_local_weights_are_loaded(tmp_path, resnet18_state, fmt: str) -> None:
    if fmt == "safetensors":
        path = tmp_path / "enc.safetensors"
        save_file(resnet18_state, str(path))
    elif fmt == "pth":
        path = tmp_path / "enc.pth"
        torch.save(resnet18_state, path)
    else:  # a whole SMP model's state dict: keys start with "encoder."
        path = tmp_path / "model.pt"
        torch.save({f"encoder.{k}": v for k, v in resnet18_state.items()}, path)
    loaded = _build(str(path)).encoder.encoder.state_dict()
    for key in ("layer4.1.conv2.weight", "conv1.weight", "bn1.running_var"):
        torch.testing.assert_close(loaded[key], resnet18_state[key])


def test_local_weights_adapt_to_one_input_channel(tmp_path, resnet18_state) -> None:
    path = tmp_path / "enc.pth"
    torch.save(resnet18_state, path)
    loaded = _build(str(path), in_channels=1).encoder.encoder.state_dict()
    assert loaded["conv1.weight"].shape[1] == 1
    torch.testing.assert_close(
        loaded["layer1.0.conv1.weight"], resnet18_state["layer1.0.conv1.weight"]
    )


def test_weights_file_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        _build(str(tmp_path / "missing.pth"))
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match=r"wrong\.pth: does not fit encoder 'resnet18'"):
        _build(str(wrong))


class Payload:  # anything beyond tensors and plain containers must not be unpickled
    pass


def test_pickled_objects_are_refused(tmp_path) -> None:
    evil = tmp_path / "evil.pth"
    torch.save({"x": Payload()}, evil)
    with pytest.raises(ValueError, match=r"evil\.pth: not a readable weights file"):
        _build(str(evil))
