"""Export to ONNX, TorchScript or a torch.export ExportedProgram, checked against PyTorch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from scseg.inference.checkpoint import LoadedModel
from scseg.inference.writing import atomic_write

FORMATS = ("onnx", "torchscript", "exported-program")
TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """Export failed, or the exported model disagrees with PyTorch."""


def example_input(model: LoadedModel, shape: Sequence[int] | None = None) -> torch.Tensor:
    """A random input of ``shape`` (spatial) or the training patch size (for an atlas-prior
    model, with a prior channel of background)."""
    spatial = list(shape or model.data_info.get("patch_size") or [64] * model.spatial_dims)
    if len(spatial) != model.spatial_dims:
        raise ValueError(f"shape needs {model.spatial_dims} values, got {spatial}")
    divisor = model.net.size_divisor if model.net.encoder.requires_divisible_input else 1
    if any(s % divisor for s in spatial):
        raise ValueError(f"shape {spatial} must be divisible by {divisor} for this encoder")
    x = torch.randn(1, model.in_channels, *spatial, generator=torch.Generator().manual_seed(0))
    if model.atlas:  # an atlas-prior model also takes the registered atlas's labels
        x = torch.cat([x, torch.zeros(1, 1, *spatial)], 1)
    return x


def export_model(
    model: LoadedModel,
    fmt: str,
    output: str | Path,
    shape: Sequence[int] | None = None,
    overwrite: bool = False,
) -> float:
    """Exports ``model.net`` and checks it against PyTorch on a random input.

    Args:
        fmt: ``"onnx"`` (dynamic batch and spatial axes; needs ``onnx``, checked with
            ``onnxruntime``), ``"torchscript"`` (traced) or ``"exported-program"``
            (``torch.export``, dynamic batch).
        output: file to write (atomically; kept if it exists unless ``overwrite``).
        shape: spatial size of the example input (default: the training patch size).

    Returns:
        the largest absolute difference from the PyTorch output.

    Raises:
        ExportError: if the export fails or differs by more than 1e-4.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    net = model.net.cpu().eval()
    x = example_input(model, shape)
    with torch.inference_mode():
        expected = net(x).numpy()
    writers = {"onnx": _onnx, "torchscript": _torchscript, "exported-program": _exported}
    result: dict[str, np.ndarray] = {}

    def write(path: Path) -> None:
        # checked before the rename: a failed check leaves an earlier export in place
        out = writers[fmt](net, x, path)
        result["diff"] = float(np.abs(out - expected).max())
        if result["diff"] > TOLERANCE:
            raise ExportError(
                f"{output}: {fmt} output differs from PyTorch by {result['diff']:.2e}; not written"
            )

    try:
        atomic_write(output, write, overwrite)
    except ExportError:
        raise
    except (RuntimeError, ImportError, torch.jit.Error) as err:  # the exporters raise many
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ExportError(f"{output}: {fmt} export failed: {first}") from None
    return result["diff"]


def _onnx(net: torch.nn.Module, x: torch.Tensor, path: Path) -> np.ndarray:
    import onnxruntime as ort

    axes = {0: "batch", **{i: f"size_{i}" for i in range(2, x.ndim)}}
    torch.onnx.export(
        net, (x,), str(path), input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": axes, "logits": axes}, dynamo=False, opset_version=17,
    )  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x.numpy()})[0]


def _torchscript(net: torch.nn.Module, x: torch.Tensor, path: Path) -> np.ndarray:
    with torch.inference_mode(False), torch.no_grad():
        traced = torch.jit.trace(net, x, check_trace=False)
    traced.save(str(path))
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        return loaded(x).numpy()


def _exported(net: torch.nn.Module, x: torch.Tensor, path: Path) -> np.ndarray:
    # A batch of 2: torch.export would specialise a size-1 dimension to the constant 1.
    pair = torch.cat([x, x])
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(net, (pair,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    loaded = torch.export.load(str(path)).module()
    with torch.no_grad():
        return loaded(pair)[:1].numpy()
