"""The ``scseg`` command line.

``fit``/``validate``/``test`` go through :class:`SCSegCLI` (LightningCLI); the other
subcommands are plain argparse.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

LIGHTNING_COMMANDS = ("fit", "validate", "test")
USER_ERRORS = (ValueError, OSError, RuntimeError, FloatingPointError)


def _lightning(argv: list[str] | None) -> int:
    # argv None: LightningCLI reads sys.argv itself (passing both makes it warn).
    import torch
    from jsonargparse import ArgumentError
    from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
    from lightning.pytorch.callbacks import RichProgressBar
    from lightning.pytorch.cli import LightningCLI
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from scseg.data.base import SegmentationDataModule
    from scseg.training import SegmentationModule
    from scseg.training.callbacks import (
        AtomicCheckpointIO,
        EpochTimer,
        MetricsReport,
        RunCheckpoint,
    )

    class SCSegCLI(LightningCLI):
        """LightningCLI with our checkpointing, loggers, report and AMP defaults."""

        def add_arguments_to_parser(self, parser) -> None:
            parser.add_lightning_class_args(RunCheckpoint, "checkpoint")
            parser.set_defaults(
                {
                    "checkpoint.monitor": "val/dice_mean",
                    "checkpoint.mode": "max",
                    "checkpoint.save_last": True,
                    "checkpoint.filename": "best-epoch{epoch:03d}",
                    "checkpoint.auto_insert_metric_name": False,
                }
            )

        def before_instantiate_classes(self) -> None:
            config = self.config[self.subcommand]
            trainer = config.trainer
            fold = getattr(config.data.init_args, "fold", None) if config.get("data") else None
            if fold is not None:  # each fold its own checkpoints and logs
                trainer.default_root_dir = str(Path(trainer.default_root_dir) / f"fold_{fold}")
            if trainer.precision is None and torch.cuda.is_available():
                trainer.precision = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
            if trainer.enable_progress_bar is not False:
                self.trainer_defaults["callbacks"] = [
                    *self.trainer_defaults["callbacks"],
                    RichProgressBar(leave=True),
                ]

        def instantiate_classes(self) -> None:
            # a class that refuses a value while it is built: name the key
            try:
                super().instantiate_classes()
            except ValueError as err:
                raise ValueError(_instantiation_error(str(err))) from None

        def instantiate_trainer(self, **kwargs):
            trainer = super().instantiate_trainer(**kwargs)
            root = Path(trainer.default_root_dir)
            if trainer.logger is None:
                csv = CSVLogger(root, name="logs")
                # One version folder for both, so a run's logs sit together.
                trainer.loggers = [csv, TensorBoardLogger(root, name="logs", version=csv.version)]
            for callback in trainer.checkpoint_callbacks:
                if isinstance(callback, RunCheckpoint):
                    callback.resolve_dirpath(trainer)
            if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
                trainer.strategy.checkpoint_io = AtomicCheckpointIO()
            return trainer

    try:
        SCSegCLI(
            SegmentationModule,
            # data.class_path must name a subclass of our base (no arbitrary classes)
            SegmentationDataModule,
            subclass_mode_data=True,
            args=argv,
            trainer_defaults={
                "default_root_dir": "runs/scseg",
                "logger": False,
                "callbacks": [MetricsReport(), EpochTimer()],
            },
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            # errors come back to us as exceptions, printed as one line below, instead of
            # ~80 lines of usage
            parser_kwargs={
                "exit_on_error": False,
                **{name: {"exit_on_error": False} for name in LIGHTNING_COMMANDS},
            },
        )
    except ArgumentError as err:
        command = next((w for w in (argv or sys.argv[1:]) if w in LIGHTNING_COMMANDS), "fit")
        print(f"scseg {command}: error: {_one_line(str(err))} (see scseg {command} --help)",
              file=sys.stderr)  # fmt: skip
        return 2
    except SIGTERMException:  # a SystemExit without a code: it would exit 0
        print(
            "scseg: stopped by SIGTERM; the last checkpoint is kept: resume with --ckpt_path last",
            file=sys.stderr,
        )
        return 143
    return 0


_UNION_FAILED = "Does not validate against any of the Union subtypes"


def _instantiation_error(message: str) -> str:
    """One line for a class that refused a value while LightningCLI built it, prefixed by
    the key where the message's first word is one of the class's arguments
    (``data.init_args.rotation: rotation must be ...``, ``model.scheduler: scheduler must
    be ...``). The data module's errors come wrapped in jsonargparse's listing of the
    Union's subtypes, with the whole Namespace; the model's come as they are."""
    import importlib
    import inspect
    import re

    from scseg.training import SegmentationModule

    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines or not lines[0].startswith(_UNION_FAILED):
        owner, prefix, text = SegmentationModule, "model", " ".join(lines)
    else:
        errors = [ln[2:] for ln in lines if ln.startswith("- ") and "NoneType" not in ln]
        text = "; ".join(errors) or lines[0]
        found = re.search(r"class_path='([\w.]+)'", message)
        module, _, name = found.group(1).rpartition(".") if found else ("", "", "")
        try:
            owner = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            owner = None
        prefix = "data.init_args"
        text += f" ({found.group(1)})" if found else ""
    first = re.match(r"\w+", text)
    params = inspect.signature(owner).parameters if owner is not None else {}
    if first and first.group(0) in params:
        return f"{prefix}.{first.group(0)}: {text}"
    return text if prefix == "model" else f"data: {text}"


def _one_line(message: str) -> str:
    """jsonargparse explains a wrong value over several lines, listing every type of a
    Union it tried; keep the key, the errors that are not about ``None``, and the value."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not any(ln.startswith("Does not validate against any") for ln in lines):
        return " ".join(lines)
    key = lines[0]
    errors: list[str] = []
    listing = False
    for ln in lines:
        if ln == "Errors:" or ln.startswith("Given value"):
            listing = ln == "Errors:"
        elif listing and ln.startswith("- "):
            errors.append(ln[2:])
        elif listing and errors:
            errors[-1] += " " + ln  # a nested explanation goes on over several lines
    errors = [e for e in errors if "NoneType" not in e]
    given = [
        ln.removeprefix("Given value:").strip() for ln in lines if ln.startswith("Given value:")
    ]
    text = f"{key} {'; '.join(errors) or 'invalid value'}"
    return f"{text} (given: {given[0]})" if given and "NestedArg" not in given[0] else text


def _models(args: argparse.Namespace) -> int:
    import scseg

    for name in scseg.list_models():
        print(name)
    return 0


def _quiet_dependency_noise() -> None:
    """Silence what our dependencies print that no user can act on:

    * MONAI tries an optional GPU decoder (nvImageCodec) for pydicom wherever pydicom is
      installed, and says it is absent: a log line on import and a warning from every
      ``LoadImage`` (every training and prediction case).
    * timm (imported by SMP) declares a ``torch.jit.interface`` at import, which torch 2.13
      deprecates: a FutureWarning before every command's output, even a one-line error.
    """
    import logging

    logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader: nvImageCodec decoder")
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.interface` is deprecated", category=FutureWarning
    )


def _predict(args: argparse.Namespace) -> int:
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
    from scseg.inference import PredictOptions, collect_inputs, load_models, predict_files
    from scseg.inference.runner import check_outputs
    from scseg.models import to_channels_last

    model = load_models(args.checkpoint, device)
    if args.channels_last:
        to_channels_last(model.net, model.spatial_dims)
    if args.compile:
        model.net.compile()
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
    )
    inputs = None
    if listing:
        inputs = collect_inputs(args.input, model.input_dims)
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


def _plan(args: argparse.Namespace) -> int:
    from rich.console import Console

    from scseg.planning import plan_dataset, summary_tables

    _check_writable(args.out)
    run = plan_dataset(args.data, args.out, args.memory, args.ram, args.folds, args.dims,
                       args.seed, args.epochs, args.spacing, args.subject_pattern,
                       None if args.device is None else args.device == "cpu",
                       args.overwrite)  # fmt: skip
    console = Console(width=None if sys.stdout.isatty() else 120)
    for table in summary_tables(run):
        console.print(table)
    fold = " --data.init_args.fold 0" if args.folds else ""
    print(f"wrote {run.config} and {run.split_file}\nnext: scseg fit --config {run.config}{fold}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from scseg.evaluation import evaluate, summarise, summary_table, write_csv
    from scseg.inference.writing import refuse_existing

    refuse_existing([args.out], args.overwrite)  # before the work, not after
    _check_writable(args.out)
    cases = None
    if args.split is not None:
        from scseg.data.base import read_split

        cases = read_split(args.split.parent, args.split.name, args.fold)["val"]
        if args.fold is None and json.loads(args.split.read_text()).get("folds"):
            raise ValueError(
                f"{args.split}: has folds; name the one the model trained on with --fold K "
                "(its validation cases are not the top-level 'val')"
            )
    elif args.fold is not None:
        raise ValueError("--fold needs --split (the split file that holds the folds)")
    console = Console(stderr=True)
    with console.status("scoring") as status:
        rows, names, unit = evaluate(args.prediction, args.truth, args.classes, args.tolerance,
                               lambda case: status.update(f"scoring {case}"), cases)  # fmt: skip
    write_csv(rows, args.out, args.overwrite)
    # piped output (a log) gets the whole table, not one cut to 80 columns
    wide = Console(width=None if sys.stdout.isatty() else 200)
    wide.print(summary_table(summarise(rows), unit, args.tolerance))
    cases = len({r["case"] for r in rows})
    print(f"{cases} case(s), {len(names) - 1} class(es); per case and class: {args.out}")
    return 0


def _check_writable(path: Path) -> None:
    """Raises a one-line OSError if ``path`` could not be created, before any work."""
    folder = path.parent if str(path.parent) else Path(".")
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OSError(f"{path}: cannot write here ({existing} is not a writable folder)")


def _attention(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")  # figures go to files; a notebook keeps its own backend
    from scseg.inference import load_model
    from scseg.inference.figures import attention_figures

    model = load_model(args.checkpoint)
    for path in attention_figures(model, args.input, args.output, args.overwrite, args.html,
                                  args.checkpoint, args.radiological):  # fmt: skip
        print(path)
    return 0


def _ablate(args: argparse.Namespace, overrides: list[str]) -> int:
    from scseg.training.ablation import run_ablation, summarise

    output = args.output or Path("runs") / f"ablation_{Path(args.config).stem}"
    results = run_ablation(args.config, args.seeds, output, main, args.variants, overrides)
    for path in summarise(results, output, f"{Path(args.config).stem}, {args.seeds} seeds"):
        print(path)
    print((output / "ablation.md").read_text())
    return 0


def _export(args: argparse.Namespace) -> int:
    from scseg.inference import load_model
    from scseg.inference.export import export_model

    model = load_model(args.checkpoint)
    diff = export_model(model, args.format, args.output, args.shape, args.overwrite)
    print(f"{args.output}: {args.format}, max |difference| from PyTorch {diff:.2e}")
    return 0


SCRIPTS = Path(__file__).resolve().parents[1] / "data_scripts"


def _data(args: argparse.Namespace, rest: list[str]) -> int:
    from scseg.data.samples import prepare_sample, sample_names

    if args.name in sample_names():
        if rest:
            raise ValueError(f"unexpected arguments for sample {args.name}: {' '.join(rest)}")
        print(f"{args.name}: {prepare_sample(args.name, args.out, atlas=args.atlas)}")
        return 0
    if args.atlas:
        raise ValueError(f"--atlas is an option of sample brain_parcellation3d, not {args.name}")
    script = SCRIPTS / f"{args.name}.py"
    if args.name.startswith("_") or not script.is_file():
        known = sorted(p.stem for p in SCRIPTS.glob("[!_]*.py")) if SCRIPTS.is_dir() else []
        raise ValueError(
            f"unknown dataset {args.name!r}; samples: {', '.join(sample_names())}; "
            f"scripts in {SCRIPTS}: {', '.join(known) or 'none (not a source checkout)'}"
        )
    import runpy

    sys.argv = [str(script), *(["--out", str(args.out)] if args.out else []), *rest]
    sys.path.insert(0, str(SCRIPTS))
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as done:
        return int(done.code or 0)
    finally:
        sys.path.remove(str(SCRIPTS))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the problem and where to read more, no usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _at_least(low: int):
    """An argparse type: a whole number of at least ``low``."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return whole


_positive_int = _at_least(1)
_non_negative_int = _at_least(0)


def _overlap(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from scseg import __version__
    from scseg.data.samples import ATLASES, sample_names

    parser = _Parser(
        prog="scseg",
        description="U-Nets with cSE/sSE/scSE recalibration, 2D and 3D. "
        f"Training: scseg {{{','.join(LIGHTNING_COMMANDS)}}} --config FILE (see --help of each).",
    )
    parser.add_argument("--version", action="version", version=f"scseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(name, help=f"{name} from a YAML config (LightningCLI)", add_help=False)
    models = sub.add_parser("models", help="list the model names create_model accepts")
    models.set_defaults(func=_models)
    predict = sub.add_parser(
        "predict", help="segment NIfTI/NRRD volumes, DICOM series or 2D images"
    )
    predict.add_argument(
        "--checkpoint", required=True, type=Path, nargs="+",
        help="scseg .ckpt file; several (the folds of a plan): their probabilities are averaged",
    )  # fmt: skip
    predict.add_argument(
        "--input", required=True, type=Path,
        help="a file, or a folder of files and/or DICOM series (in it or its subfolders)",
    )  # fmt: skip
    predict.add_argument("--output", required=True, type=Path, help="output folder")
    predict.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    predict.add_argument("--tta", action="store_true", help="average over mirrored inputs")
    predict.add_argument("--probabilities", action="store_true", help="also write probabilities")
    predict.add_argument(
        "--probabilities-dtype",
        choices=["float32", "uint8"],
        default="float32",
        help="3D probabilities file: float32, or uint8 quantised (scale 1/255, 4x smaller)",
    )
    predict.add_argument("--overlay", action="store_true", help="2D: also write a colour overlay")
    predict.add_argument(
        "--roi-size", type=_positive_int, nargs="+", help="3D window (default: patch)"
    )
    predict.add_argument("--overlap", type=_overlap, default=0.5, help="3D window overlap, [0, 1)")
    predict.add_argument(
        "--sw-batch-size",
        type=_positive_int,
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
        type=_positive_int,
        help="spread the inputs over N processes on this machine (--device cpu or cuda: one "
        "GPU each); under torchrun or srun the launcher's layout is used",
    )
    predict.add_argument(
        "--num-nodes", type=_positive_int, help="machines taking part (with srun or torchrun)"
    )
    predict.add_argument(
        "--channels-last", action="store_true", help="channels-last layout (faster for 2D)"
    )
    predict.add_argument(
        "--compile", action="store_true", help="torch.compile the network: pays off over many files"
    )
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    predict.set_defaults(func=_predict)
    plan = sub.add_parser(
        "plan",
        help="fingerprint a dataset folder and write a training config and split for it",
        description="Reads a 2D folder (images/, masks/) or an MSD-layout folder (imagesTr/, "
        "labelsTr/, dataset.json optional), checks every case, and chooses spacing, patch, "
        "batch, network and normalisation after nnU-Net's rules; each choice is explained "
        "in the YAML.",
    )
    plan.add_argument("--data", required=True, type=Path, help="the dataset folder")
    plan.add_argument(
        "--out", required=True, type=Path, help="config to write (and <name>_split.json beside it)"
    )
    plan.add_argument(
        "--memory",
        type=float,
        help="GiB for training (default: the GPU's, or 8 on a CPU as nnU-Net's reference)",
    )
    plan.add_argument(
        "--ram",
        type=float,
        help="GiB of RAM the preprocessed data may take in "
        "memory (default: half of this machine's); beyond half of it: on disk",
    )
    plan.add_argument("--folds", type=_positive_int, default=0, help="also K folds (2 or more)")
    plan.add_argument(
        "--dims",
        type=int,
        choices=(2, 3),
        help="3: a 3D U-Net; 2: slice by slice (default: the data's own)",
    )
    plan.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        help="where training will run (default: here: cuda if present)",
    )
    plan.add_argument(
        "--spacing", type=float, nargs=3, help="3D: target spacing (mm) instead of the planned one"
    )
    plan.add_argument("--epochs", type=_positive_int, default=100, help="of 50 steps (default 100)")
    plan.add_argument("--seed", type=int, default=0, help="of the split (default 0)")
    plan.add_argument(
        "--subject-pattern",
        help="regex whose first group (or whole match) is a case's subject: a subject's "
        "cases stay on one side of every split (default: BIDS sub-<label> where names carry it)",
    )
    plan.add_argument("--overwrite", action="store_true", help="replace existing files")
    plan.set_defaults(func=_plan)
    evaluate = sub.add_parser(
        "evaluate",
        help="score label maps against ground truth: Dice, IoU, HD95, MSD, NSD per case and class",
        description="Surface metrics in mm from the files' spacing (pixels for PNG masks). "
        "A structure absent from truth and prediction is not scored; absent from one only, "
        "it scores Dice/IoU/NSD 0 and HD95/MSD the grid's diagonal.",
    )
    evaluate.add_argument("--prediction", required=True, type=Path, help="folder of label maps")
    evaluate.add_argument(
        "--truth", required=True, type=Path, help="folder of ground truth, same file names"
    )
    evaluate.add_argument("--out", required=True, type=Path, help="CSV of scores to write")
    evaluate.add_argument(
        "--classes", nargs="+", help="a name per label value, background first (default: the "
        "prediction's .tsv label tables or dataset.json)"
    )  # fmt: skip
    evaluate.add_argument("--tolerance", type=float, default=1.0,
                          help="NSD tolerance, mm (pixels for PNG masks); default 1")  # fmt: skip
    evaluate.add_argument(
        "--split", type=Path, help="a split file (scseg plan's): score its validation cases only"
    )
    evaluate.add_argument(
        "--fold", type=_non_negative_int, help="with --split: score fold K's validation cases "
        "(a split with folds needs it: each fold validates on other cases)"
    )  # fmt: skip
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing CSV")
    evaluate.set_defaults(func=_evaluate)
    attention = sub.add_parser("attention", help="figures of the sSE maps and cSE weights")
    attention.add_argument("--checkpoint", required=True, type=Path, help="scseg .ckpt file")
    attention.add_argument("--input", required=True, type=Path, help="an image or a volume")
    attention.add_argument("--output", required=True, type=Path, help="output folder")
    attention.add_argument("--html", action="store_true",
                           help="also write <name>_attention.html: one self-contained page "
                           "with slice slider, overlays and cSE bar charts")  # fmt: skip
    attention.add_argument(
        "--radiological", action="store_true", help="volumes with the patient's right on the "
        "screen's left, as radiology viewers show them (default: on the right, neurological)"
    )  # fmt: skip
    attention.add_argument("--overwrite", action="store_true", help="replace existing figures")
    attention.set_defaults(func=_attention)
    ablate = sub.add_parser(
        "ablate",
        help="train a config with none/cse/sse/scse and several seeds; table, CSV and plot",
        description="Other arguments are passed to every 'scseg fit', e.g. --trainer.max_epochs 5",
    )
    ablate.add_argument("--config", required=True, help="a training config (YAML)")
    ablate.add_argument("--seeds", type=_positive_int, default=3, help="seeds 0..N-1 per variant")
    ablate.add_argument("--variants", nargs="+", default=["none", "cse", "sse", "scse"])
    ablate.add_argument("--output", type=Path, help="default: runs/ablation_<config>")
    export = sub.add_parser("export", help="export a checkpoint's network (parity-checked)")
    export.add_argument("--checkpoint", required=True, type=Path, help="scseg .ckpt file")
    export.add_argument(
        "--format", required=True, choices=("onnx", "torchscript", "exported-program")
    )
    export.add_argument("--output", required=True, type=Path, help="file to write")
    export.add_argument("--shape", type=_positive_int, nargs="+", help="example spatial size")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")
    export.set_defaults(func=_export)
    data = sub.add_parser(
        "data",
        help="fetch and prepare a dataset: a sample "
        f"({', '.join(sample_names())}) or a data_scripts/ script (msd, oxford_pet, ...)",
    )
    data.add_argument("name")
    data.add_argument("--out", type=Path, default=None, help="data folder")
    data.add_argument(
        "--atlas",
        choices=ATLASES,
        help=f"brain_parcellation3d's parcellation (default {ATLASES[0]})",
    )
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings (about the user's data) as one line each, like our errors; the
    dependencies' keep Python's format."""
    if category.__module__.startswith("scseg."):
        print(f"scseg: warning: {message}", file=sys.stderr if file is None else file)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    _quiet_dependency_noise()
    warnings.showwarning = _show_warning
    try:
        if words and words[0] in LIGHTNING_COMMANDS:
            return _lightning(argv)
        args, rest = build_parser().parse_known_args(words)
        if args.command == "data":
            return _data(args, rest)
        if args.command == "ablate":
            return _ablate(args, rest)
        if rest:
            build_parser().error(f"unrecognized arguments: {' '.join(rest)}")
        return args.func(args)
    except USER_ERRORS as err:
        if os.environ.get("SCSEG_DEBUG"):
            raise
        print(f"scseg: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("scseg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
