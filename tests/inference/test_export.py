"""Export with parity against PyTorch: ONNX (onnxruntime, 1e-4), TorchScript, ExportedProgram."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from scseg.cli import main
from scseg.inference import load_model
from scseg.inference.export import TOLERANCE, ExportError, export_model

from .conftest import tiny_model


@pytest.mark.parametrize(("spatial_dims", "stem_stride"), [(2, 1), (3, 1), (3, 2)])
def test_onnx_parity_and_dynamic_shapes(spatial_dims: int, stem_stride: int, tmp_path) -> None:
    model = tiny_model(spatial_dims, stem_stride)  # stride 2: logits interpolated to a dynamic size
    path = tmp_path / "model.onnx"
    diff = export_model(model, "onnx", path)
    assert diff < TOLERANCE
    # Another batch and size than the example: the axes are dynamic.
    size = [96, 64] if spatial_dims == 2 else [24, 20, 17]
    x = torch.randn(2, 1, *size)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model.net(x).numpy(), atol=TOLERANCE)


@pytest.mark.parametrize("fmt", ["torchscript", "exported-program"])
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_other_formats(fmt: str, spatial_dims: int, tmp_path) -> None:
    assert export_model(tiny_model(spatial_dims), fmt, tmp_path / f"m.{fmt}") < TOLERANCE


def test_export_refuses_to_overwrite_and_bad_shape(tmp_path) -> None:
    target = tmp_path / "m.onnx"
    target.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_model(tiny_model(3), "onnx", target)
    assert target.read_bytes() == b"keep"
    with pytest.raises(ValueError, match="divisible by 32"):
        export_model(tiny_model(2), "onnx", tmp_path / "x.onnx", shape=[50, 64])
    with pytest.raises(ValueError, match="format must be one of"):
        export_model(tiny_model(2), "tflite", tmp_path / "x.tflite")
    assert ExportError.__mro__[1] is RuntimeError


def test_export_cli_from_checkpoint(ckpt_3d, tmp_path, capsys) -> None:
    out = tmp_path / "brain.onnx"
    assert (
        main(["export", "--checkpoint", str(ckpt_3d), "--format", "onnx", "--output", str(out)])
        == 0
    )
    assert "max |difference| from PyTorch" in capsys.readouterr().out
    model = load_model(ckpt_3d)
    x = torch.randn(1, 1, 32, 32, 32)
    got = ort.InferenceSession(str(out)).run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model.net(x).numpy(), atol=TOLERANCE)


def test_failed_parity_check_keeps_the_previous_export(tmp_path, monkeypatch) -> None:
    from scseg.inference import export as export_module

    target = tmp_path / "m.pt2"
    model = tiny_model(2)
    export_model(model, "exported-program", target)
    good = target.read_bytes()
    real = export_module._exported

    def drifting(net, x, path):
        return real(net, x, path) + 1.0  # an exporter whose output disagrees

    monkeypatch.setattr(export_module, "_exported", drifting)
    with pytest.raises(ExportError, match=r"differs from PyTorch by 1\.00e"):
        export_model(model, "exported-program", target, overwrite=True)
    assert target.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt2"]  # no temporary left
