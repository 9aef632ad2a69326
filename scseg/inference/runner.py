"""Prediction over many files: progress, per-file errors, atomic outputs."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from scseg.data.labels import labelmap_names
from scseg.inference.checkpoint import LoadedModel
from scseg.inference.ensemble import (
    ConfigurationEnsemble,
    predict_ensemble_image,
    predict_ensemble_volume,
)
from scseg.inference.image import is_image, overlay, predict_image
from scseg.inference.volume import InputError, is_volume, predict_volume
from scseg.inference.writing import OutputExistsError, StagedWrites, refuse_existing
from scseg.io.dicom import DicomSeries, SeriesError, find_series, is_dicom_file
from scseg.io.label_tables import label_table
from scseg.io.volumes import ChannelFiles, case_name, group_channel_files

FORMATS = ("nifti", "dicom-seg")
# a file, a DICOM series (a folder's files), or a scan's channel files (nnU-Net v2 names)
Source = Path | DicomSeries | ChannelFiles


@dataclass
class PredictOptions:
    """What :func:`predict_files` writes for each input and how.

    ``formats``: for volumes, ``"nifti"`` (labels ``.nii.gz`` and a ``.tsv`` of class
    names) and/or ``"dicom-seg"`` (``<name>_seg.dcm``, for DICOM series input only).
    """

    formats: tuple[str, ...] = ("nifti",)
    overwrite: bool = False
    tta: bool = False
    probabilities: bool = False
    probabilities_dtype: str = "float32"
    overlay: bool = False
    roi_size: Sequence[int] | None = None
    overlap: float = 0.5
    sw_batch_size: int = 4
    regions: str = "masks"
    nonfinite: str = "refuse"


@dataclass
class PredictSummary:
    """What a run did with each input: predicted, kept (every output already there), or
    failed (with the message)."""

    done: list[Source] = field(default_factory=list)
    kept: list[Source] = field(default_factory=list)
    failures: list[tuple[Source, str]] = field(default_factory=list)

    def merge(self, other: PredictSummary) -> None:
        self.done += other.done
        self.kept += other.kept
        self.failures += other.failures

    @property
    def total(self) -> int:
        return len(self.done) + len(self.kept) + len(self.failures)


def collect_inputs(path: str | Path, spatial_dims: int, channels: int = 1) -> list[Source]:
    """The file itself, or what a folder holds that this model can read: its image files
    (2D) or its volume files and the DICOM series in it and its subfolders (3D), sorted.
    Volume files all named as nnU-Net v2 names them (``<case>_0000.nii.gz`` to
    ``<case>_<channels - 1>``) are one input per case, named ``<case>``
    (:func:`scseg.io.volumes.group_channel_files`).

    Raises:
        InputError: if the path does not exist, is a single DICOM file (give its series'
            folder), or a folder holds nothing to predict.
    """
    path = Path(path)
    if path.is_file():
        if spatial_dims == 3 and not is_volume(path) and is_dicom_file(path):
            raise InputError(f"{path}: one DICOM file; give the folder of its series")
        return [path]
    if not path.is_dir():
        raise InputError(f"{path}: no such file or folder")
    wanted = is_volume if spatial_dims == 3 else is_image
    found: list[Source] = sorted(p for p in path.iterdir() if p.is_file() and wanted(p))
    if spatial_dims == 3:
        found = group_channel_files(found, channels) + find_series(path)
    if not found:
        kind = "NIfTI/NRRD volumes or DICOM series" if spatial_dims == 3 else "images"
        raise InputError(f"{path}: holds no {kind}")
    return found


def source_name(source: Source) -> str:
    """The name its outputs take: the file name without its suffix, or the series' name."""
    return source.name if isinstance(source, (DicomSeries, ChannelFiles)) else case_name(source)


def outputs_for(path: Source, out_dir: Path, spatial_dims: int, options: PredictOptions) -> dict:
    """Output paths by kind; ``spatial_dims`` is the input's (3 for volumes, also when a
    2D model segments them slice by slice)."""
    stem = source_name(path)
    if spatial_dims == 3:
        names = {}
        if "nifti" in options.formats:
            names = {"labels": f"{stem}.nii.gz", "names": f"{stem}.tsv"}
        if "dicom-seg" in options.formats:
            names["dicom-seg"] = f"{stem}_seg.dcm"
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
    inputs: Sequence[Source], out_dir: Path, spatial_dims: int, options: PredictOptions
) -> None:
    """Refuses a run that would write over one of its inputs, or write two inputs to one
    output (``a.nii.gz`` and ``a.nrrd`` both give ``a.nii.gz``), before anything is written.

    Raises:
        InputError: naming the files.
    """
    sources = {p.resolve(): p for p in inputs if isinstance(p, Path)}
    sources |= {f.resolve(): s for s in inputs if isinstance(s, (DicomSeries, ChannelFiles))
                for f in s.files}  # fmt: skip
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


def _output_names(model: LoadedModel, regions: str) -> list[str]:
    """The name of each value (masks: each mask after 0) of a volume prediction: the
    classes; a region model's regions with 0 "in none of them"; a region label map's
    values by the order semantics (:func:`scseg.data.labels.labelmap_names`)."""
    if not model.multilabel:
        return model.class_names
    if regions == "labelmap":
        info = model.data_info
        order = info.get("region_order") or list(range(1, len(model.class_names) + 1))
        return labelmap_names(model.class_names, order, info.get("regions"))
    return ["background", *model.class_names]


def predict_one(
    model: LoadedModel, path: Source, out_dir: Path, options: PredictOptions
) -> dict | None:
    """Predicts one input and writes its outputs; returns their paths, or ``None`` when
    every output is there already (a finished case of an earlier run, kept).

    Raises:
        OutputExistsError: when only some outputs exist (and not ``overwrite``).
        InputError, SeriesError: for an input that cannot be predicted.
    """
    targets = outputs_for(path, out_dir, model.input_dims, options)
    if not options.overwrite and all(t.exists() for t in targets.values()):
        return None
    refuse_existing(targets.values(), options.overwrite)
    if "dicom-seg" in targets and not isinstance(path, DicomSeries):
        raise InputError(f"{path}: DICOM-SEG output needs a DICOM series as input")
    with StagedWrites(options.overwrite) as staged:  # all outputs appear together
        _predict_into(staged, model, path, targets, options)
    return targets


def _predict_into(
    staged: StagedWrites, model: LoadedModel, path: Source, targets: dict, options: PredictOptions
) -> None:
    if model.input_dims == 3:
        if isinstance(model, ConfigurationEnsemble):  # each member its own windows
            volume = functools.partial(predict_ensemble_volume, model, path, options.tta)
        else:
            settings = (options.roi_size, options.overlap, options.sw_batch_size, options.tta)
            volume = functools.partial(predict_volume, model, path, *settings)
        if options.probabilities:  # written class by class as they are resampled
            done: list = []
            staged.write(targets["probabilities"], lambda t: done.append(volume(
                probabilities_file=t, probabilities_dtype=options.probabilities_dtype,
                regions=options.regions, nonfinite=options.nonfinite)))  # fmt: skip
            result = done[0]
        else:
            result = volume(regions=options.regions, nonfinite=options.nonfinite)
        names = _output_names(model, options.regions)
        if "dicom-seg" in targets:
            from scseg.inference.dicom_seg import write_dicom_seg

            labels = np.asarray(result.labels.dataobj)
            staged.write(targets["dicom-seg"], lambda t: write_dicom_seg(
                t, labels, result.series, names))  # fmt: skip
        if "labels" in targets:
            table = label_table(names)
            staged.write(targets["names"], lambda t: Path(t).write_text(table))
            staged.write(targets["labels"], lambda t: nib.save(result.labels, t))
        return
    image = predict_ensemble_image if isinstance(model, ConfigurationEnsemble) else predict_image
    labels, probs = image(model, path, options.tta, options.nonfinite)
    if "probabilities" in targets:
        staged.write(targets["probabilities"], lambda t: np.save(t, probs.astype(np.float32)))
    if "overlay" in targets:
        tinted = overlay(path, labels)
        staged.write(targets["overlay"], lambda t: Image.fromarray(tinted).save(t))
    staged.write(targets["labels"], lambda t: Image.fromarray(labels).save(t))


def predict_files(
    model: LoadedModel,
    inputs: Sequence[Source],
    out_dir: str | Path,
    options: PredictOptions | None = None,
    quiet: bool = False,
    check: bool = True,
) -> PredictSummary:
    """Predicts every input; one bad input is reported and skipped, the rest still run.
    An input whose outputs all exist is kept as it is (a rerun resumes where the last one
    stopped), unless ``options.overwrite``.

    Args:
        check: run :func:`check_outputs` first (a caller that predicts a share of a larger
            list checks the whole list itself).

    Raises:
        InputError: before any prediction, if an output would replace an input or two
            inputs would share an output (:func:`check_outputs`).
    """
    options = options or PredictOptions()
    unknown = set(options.formats) - set(FORMATS)
    if unknown or not options.formats:
        raise ValueError(f"formats must be some of {FORMATS}, got {options.formats}")
    out_dir = Path(out_dir)
    if check:
        check_outputs(inputs, out_dir, model.input_dims, options)
    summary = PredictSummary()
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=quiet) as progress:
        task = progress.add_task("predicting", total=len(inputs))
        for path in inputs:
            progress.update(task, description=source_name(path))
            try:
                written = predict_one(model, path, out_dir, options)
                (summary.done if written is not None else summary.kept).append(path)
            except (InputError, SeriesError, OutputExistsError, OSError, ValueError) as err:
                summary.failures.append((path, str(err)))
                progress.console.print(f"[red]failed[/red] {err}", highlight=False)
            progress.advance(task)
    return summary
