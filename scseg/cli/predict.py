"""``scseg predict``: volumes, DICOM series or images in; label maps (NIfTI, DICOM-SEG,
PNG) out, in one process or spread over several."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scseg.cli.common import (
    USER_ERRORS,
    add_model_source,
    load_source,
    model_source,
    overlap,
    positive_int,
)


def add_parser(sub) -> None:
    predict = sub.add_parser(
        "predict", help="segment NIfTI/NRRD volumes, DICOM series or 2D images"
    )
    add_model_source(predict, several=True)
    predict.add_argument(
        "--input", required=True, type=Path,
        help="a file, or a folder of files and/or DICOM series (in it or its subfolders)",
    )  # fmt: skip
    predict.add_argument("--output", required=True, type=Path, help="output folder")
    predict.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    predict.add_argument(
        "--tta",
        action="store_true",
        help="average over mirrored inputs (axes mirrored in training)",
    )
    predict.add_argument(
        "--nonfinite",
        choices=["refuse", "fill"],
        default="refuse",
        help="NaN/Inf intensities: refuse the input (default), or fill them with the "
        "lowest finite intensity and say how many",
    )
    predict.add_argument("--probabilities", action="store_true", help="also write probabilities")
    predict.add_argument(
        "--probabilities-dtype",
        choices=["float32", "uint8"],
        default="float32",
        help="3D probabilities file: float32, or uint8 quantised (scale 1/255, 4x smaller)",
    )
    predict.add_argument("--overlay", action="store_true", help="2D: also write a colour overlay")
    predict.add_argument(
        "--roi-size", type=positive_int, nargs="+", help="3D window (default: patch)"
    )
    predict.add_argument("--overlap", type=overlap, default=0.5, help="3D window overlap, [0, 1)")
    predict.add_argument(
        "--sw-batch-size",
        type=positive_int,
        default=4,
        help="3D windows (slices, for a 2D model on volumes) per batch; at most, lowered "
        "where one batch of window logits would pass 256 MiB",
    )
    predict.add_argument(
        "--format",
        nargs="+",
        choices=("nifti", "dicom-seg"),
        default=["nifti"],
        help="3D outputs: nifti (labels .nii.gz + class .tsv) and/or dicom-seg (<name>_seg.dcm, "
        "for DICOM series input)",
    )
    predict.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    predict.add_argument(
        "--devices",
        type=positive_int,
        help="spread the inputs over N processes on this machine (--device cpu or cuda: one "
        "GPU each); under torchrun or srun the launcher's layout is used",
    )
    predict.add_argument(
        "--num-nodes", type=positive_int, help="machines taking part (with srun or torchrun)"
    )
    predict.add_argument(
        "--channels-last", action="store_true", help="channels-last layout (faster for 2D)"
    )
    predict.add_argument(
        "--compile", action="store_true", help="torch.compile the network: pays off over many files"
    )
    predict.add_argument(
        "--regions", choices=("masks", "labelmap"), default="masks", help="for a model of "
        "regions that may overlap: one mask per region (a 4D file; DICOM-SEG: overlapping "
        "segments), or one label map by the regions' order (later regions over earlier)"
    )  # fmt: skip
    predict.add_argument(
        "--atlas", nargs=2, type=Path, metavar=("IMAGE", "LABELS"),
        help="for a model that refines a registered atlas: the atlas image and label files "
        "(default: those it was trained with)",
    )  # fmt: skip
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    predict.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scseg.inference.distributed import is_launched, launch_layout

    devices, nodes = launch_layout(args.devices, args.num_nodes)
    if devices * nodes == 1 and not is_launched():
        inputs, predict = _prepare_prediction(args, args.device, args.quiet, True)
        summary = predict(inputs)
    else:
        summary = _predict_spread(args, devices, nodes)
        if summary is None:  # not process 0: it reports for everyone
            return 0
    return _report(summary, args.output)


def _prepare_prediction(args: argparse.Namespace, device: str, quiet: bool, listing: bool):
    """Loads the model and, with ``listing``, lists the inputs (all of them, checked
    against each other's outputs); returns them (else ``None``) and a function that
    predicts a list of them."""
    from scseg.inference import PredictOptions, collect_inputs, predict_files
    from scseg.inference.runner import check_outputs
    from scseg.models import to_channels_last

    model = load_source(args, device, ensembles=True)
    if args.atlas:
        if not model.atlas:
            raise ValueError(f"--atlas: {model_source(args)} does not refine an atlas")
        model.data_info["label_prior"] = {**model.atlas, "image": str(args.atlas[0].resolve()),
                                          "label": str(args.atlas[1].resolve())}  # fmt: skip
    if args.roi_size and hasattr(model, "members"):
        raise ValueError(f"--roi-size: {args.model} is an ensemble of configurations, each "
                         "predicting with its own windows")  # fmt: skip
    for member in getattr(model, "members", [model]):  # an ensemble: each configuration
        if args.channels_last:
            to_channels_last(member.net, member.spatial_dims)
        if args.compile:
            member.net.compile()
    options = PredictOptions(
        formats=tuple(dict.fromkeys(args.format)),
        overwrite=args.overwrite,
        tta=args.tta,
        probabilities=args.probabilities,
        probabilities_dtype=args.probabilities_dtype,
        overlay=args.overlay,
        roi_size=args.roi_size,
        overlap=args.overlap,
        sw_batch_size=args.sw_batch_size,
        regions=args.regions,
        nonfinite=args.nonfinite,
    )
    inputs = None
    if listing:
        inputs = collect_inputs(args.input, model.input_dims, model.in_channels)
        check_outputs(inputs, args.output, model.input_dims, options)

    def predict(part):
        return predict_files(model, part, args.output, options, quiet=quiet, check=False)

    return inputs, predict


def _predict_spread(args: argparse.Namespace, devices: int, nodes: int):
    """``--devices``/``--num-nodes`` or a launcher: each process predicts its share."""
    from scseg.inference.distributed import predict_spread

    if args.device not in ("cpu", "cuda"):
        raise ValueError(f"--device {args.device}: with several processes give cpu or cuda "
                         "(each process takes its own GPU)")  # fmt: skip

    def run(process_device: str, quiet: bool, listing: bool):
        return _prepare_prediction(args, process_device, quiet, listing)

    try:
        return predict_spread(run, args.device, devices, nodes, args.quiet)
    except USER_ERRORS:
        from lightning.fabric.utilities.rank_zero import rank_zero_only

        # every process meets the same bad input; process 0 alone says so
        if getattr(rank_zero_only, "rank", 0) != 0:
            sys.exit(1)
        raise


def _report(summary, output: Path) -> int:
    kept = f", {len(summary.kept)} kept (outputs already there)" if summary.kept else ""
    print(f"{len(summary.done)} of {summary.total} input(s) predicted into {output}{kept}")
    if summary.failures:
        print(f"scseg: error: {len(summary.failures)} input(s) failed:", file=sys.stderr)
        for _, message in summary.failures:
            print(f"  {message}", file=sys.stderr)
        return 1
    return 0
