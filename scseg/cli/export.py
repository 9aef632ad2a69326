"""``scseg export``: a model's network as ONNX, TorchScript or an ExportedProgram, or the
whole model (preprocessing and sliding window included) as a MONAI bundle."""

from __future__ import annotations

import argparse
from pathlib import Path

from scseg.cli.common import add_model_source, load_source, positive_int

FILE_FORMATS = ("onnx", "torchscript", "exported-program")


def add_parser(sub) -> None:
    export = sub.add_parser(
        "export", help="export a model's network (parity-checked) or a MONAI bundle"
    )
    add_model_source(export)
    export.add_argument(
        "--format",
        required=True,
        choices=(*FILE_FORMATS, "monai-bundle"),
        help="a network file, or monai-bundle: a folder that MONAI's bundle API runs (3D)",
    )
    export.add_argument("--output", required=True, type=Path, help="file (folder) to write")
    export.add_argument("--shape", type=positive_int, nargs="+", help="example spatial size")
    export.add_argument("--overwrite", action="store_true", help="replace an existing output")
    export.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = load_source(args)
    if args.format == "monai-bundle":
        from scseg.inference.bundle import write_bundle

        card = None
        if args.model is not None:
            from scseg.inference.package import read_card

            card = read_card(args.model)
        keep = tuple(p for p in (args.model, getattr(args, "checkpoint", None)) if p)
        write_bundle(model, args.output, card, args.overwrite, tuple(map(Path, keep)))
        print(
            f"{args.output}: MONAI bundle; run it with monai.bundle.run(config_file="
            f"'{args.output}/configs/inference.json', bundle_root='{args.output}', "
            "dataset_dir=INPUT_FOLDER, output_dir=OUTPUT_FOLDER)"
        )
        return 0
    from scseg.inference.export import export_model

    diff = export_model(model, args.format, args.output, args.shape, args.overwrite)
    print(f"{args.output}: {args.format}, max |difference| from PyTorch {diff:.2e}")
    return 0
