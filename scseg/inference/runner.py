"""Prediction over many files: progress, per-file errors, atomic outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from scseg.data.volumes3d import case_name
from scseg.inference.checkpoint import LoadedModel
from scseg.inference.image import is_image, overlay, predict_image
from scseg.inference.volume import InputError, is_volume, predict_volume
from scseg.inference.writing import OutputExistsError, atomic_write, refuse_existing


@dataclass
class PredictOptions:
    overwrite: bool = False
    tta: bool = False
    probabilities: bool = False
    probabilities_dtype: str = "float32"
    overlay: bool = False
    roi_size: Sequence[int] | None = None
    overlap: float = 0.5
    sw_batch_size: int = 4


def collect_inputs(path: str | Path, spatial_dims: int) -> list[Path]:
    """The file itself, or the files of a folder that this model can read (sorted).

    Raises:
        InputError: if the path does not exist or a folder holds no such file.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"{path}: no such file or folder")
    wanted = is_volume if spatial_dims == 3 else is_image
    files = sorted(p for p in path.iterdir() if p.is_file() and wanted(p))
    if not files:
        kind = "NIfTI/NRRD volumes" if spatial_dims == 3 else "images"
        raise InputError(f"{path}: holds no {kind}")
    return files


def outputs_for(path: Path, out_dir: Path, spatial_dims: int, options: PredictOptions) -> dict:
    """Output paths by kind; ``spatial_dims`` is the input's (3 for volumes, also when a
    2D model segments them slice by slice)."""
    stem = case_name(path)
    if spatial_dims == 3:
        names = {"labels": f"{stem}.nii.gz", "names": f"{stem}.tsv"}
        if options.probabilities:
            names["probabilities"] = f"{stem}_probabilities.nii.gz"
    else:
        names = {"labels": f"{stem}.png"}
        if options.probabilities:
            names["probabilities"] = f"{stem}_probabilities.npy"
        if options.overlay:
            names["overlay"] = f"{stem}_overlay.png"
    return {k: out_dir / v for k, v in names.items()}


def check_outputs(
    inputs: Sequence[Path], out_dir: Path, spatial_dims: int, options: PredictOptions
) -> None:
    """Refuses a run that would write over one of its inputs, or write two inputs to one
    output (``a.nii.gz`` and ``a.nrrd`` both give ``a.nii.gz``), before anything is written.

    Raises:
        InputError: naming the files.
    """
    sources = {p.resolve(): p for p in inputs}
    claimed: dict[Path, Path] = {}
    for path in inputs:
        for target in outputs_for(path, out_dir, spatial_dims, options).values():
            key = target.resolve()
            if key in sources:
                raise InputError(
                    f"{target}: output would replace the input {sources[key]}; "
                    "choose another --output folder"
                )
            if key in claimed:
                raise InputError(
                    f"{claimed[key]} and {path} both map to the output {target}; "
                    "rename one or predict them into different folders"
                )
            claimed[key] = path


def label_table(class_names: Sequence[str]) -> str:
    """The class names as a BIDS segmentation look-up table (``*_dseg.tsv``: ``index`` and
    ``name`` columns), which viewers and pipelines read to name each label value."""
    rows = [f"{i}\t{name}" for i, name in enumerate(class_names)]
    return "\n".join(["index\tname", *rows]) + "\n"


def predict_one(model: LoadedModel, path: Path, out_dir: Path, options: PredictOptions) -> dict:
    """Predicts one file and writes its outputs; returns their paths."""
    targets = outputs_for(path, out_dir, model.input_dims, options)
    refuse_existing(targets.values(), options.overwrite)
    if model.input_dims == 3:
        settings = (options.roi_size, options.overlap, options.sw_batch_size, options.tta)
        if options.probabilities:  # written class by class as they are resampled
            done: list = []
            atomic_write(targets["probabilities"], lambda t: done.append(predict_volume(
                model, path, *settings, probabilities_file=t,
                probabilities_dtype=options.probabilities_dtype)), True)  # fmt: skip
            result = done[0]
        else:
            result = predict_volume(model, path, *settings)
        table = label_table(model.class_names)
        atomic_write(targets["names"], lambda t: Path(t).write_text(table), True)
        atomic_write(targets["labels"], lambda t: nib.save(result.labels, t), True)
        return targets
    labels, probs = predict_image(model, path, options.tta)
    if "probabilities" in targets:
        atomic_write(targets["probabilities"], lambda t: np.save(t, probs.astype(np.float32)), True)
    if "overlay" in targets:
        tinted = overlay(path, labels)
        atomic_write(targets["overlay"], lambda t: Image.fromarray(tinted).save(t), True)
    atomic_write(targets["labels"], lambda t: Image.fromarray(labels).save(t), True)
    return targets


def predict_files(
    model: LoadedModel,
    inputs: Sequence[Path],
    out_dir: str | Path,
    options: PredictOptions | None = None,
    quiet: bool = False,
) -> list[tuple[Path, str]]:
    """Predicts every input; one bad file is reported and skipped, the rest still run.

    Raises:
        InputError: before any prediction, if an output would replace an input or two
            inputs would share an output (:func:`check_outputs`).

    Returns:
        ``(path, message)`` for every file that failed.
    """
    options = options or PredictOptions()
    out_dir = Path(out_dir)
    check_outputs(inputs, out_dir, model.input_dims, options)
    failures: list[tuple[Path, str]] = []
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=quiet) as progress:
        task = progress.add_task("predicting", total=len(inputs))
        for path in inputs:
            progress.update(task, description=path.name)
            try:
                predict_one(model, path, out_dir, options)
            except (InputError, OutputExistsError, OSError, ValueError) as err:
                failures.append((path, str(err)))
                progress.console.print(f"[red]failed[/red] {err}", highlight=False)
            progress.advance(task)
    return failures
