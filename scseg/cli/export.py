"""``scseg export``: a checkpoint's network as ONNX, TorchScript or an ExportedProgram."""

from __future__ import annotations

import argparse
from pathlib import Path

from scseg.cli.common import positive_int


def add_parser(sub) -> None:
    export = sub.add_parser("export", help="export a checkpoint's network (parity-checked)")
    export.add_argument("--checkpoint", required=True, type=Path, help="scseg .ckpt file")
    export.add_argument(
        "--format", required=True, choices=("onnx", "torchscript", "exported-program")
    )
    export.add_argument("--output", required=True, type=Path, help="file to write")
    export.add_argument("--shape", type=positive_int, nargs="+", help="example spatial size")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")
    export.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scseg.inference import load_model
    from scseg.inference.export import export_model

    model = load_model(args.checkpoint)
    diff = export_model(model, args.format, args.output, args.shape, args.overwrite)
    print(f"{args.output}: {args.format}, max |difference| from PyTorch {diff:.2e}")
    return 0
