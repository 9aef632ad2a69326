"""3D prediction: NIfTI/NRRD in, label map out on the input's own grid and geometry."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai import transforms as T
from monai.data import MetaTensor

from scseg.atlas import register_labels
from scseg.data.intensity import NonFiniteError
from scseg.data.volumes3d import preprocessing
from scseg.inference.argmax import label_dtype, running_argmax
from scseg.inference.checkpoint import LoadedModel
from scseg.inference.inversion import checked_resampler, resampled_chunks, settled_argmax
from scseg.inference.prior import corrections_and_inversion
from scseg.inference.writing import ClassVolumeWriter, header_like, image_like
from scseg.io.dicom import DicomSeries, DicomVolume, read_series
from scseg.io.nrrd import NRRD_SUFFIXES, nrrd_affine
from scseg.io.volumes import VOLUME_SUFFIXES, ChannelFiles
from scseg.models.slabs import (
    SlabStream,
    slicewise_slabs,
    sliding_window_slabs,
    window_batch_size,
)


class InputError(ValueError):
    """An input file cannot be used with this model; the message names the file."""


@dataclass
class VolumePrediction:
    """``labels`` and ``probabilities`` on the input's grid; ``series``: the DICOM input
    as read (its datasets in slice order, for a DICOM-SEG that refers to them)."""

    labels: nib.Nifti1Image
    probabilities: nib.Nifti1Image | None = None
    series: DicomVolume | None = None


def is_volume(path: str | Path) -> bool:
    return str(path).lower().endswith(VOLUME_SUFFIXES)


def _input_geometry(
    path: Path | DicomSeries,
) -> tuple[np.ndarray, tuple[int, ...], nib.Nifti1Header | None, DicomVolume | None]:
    """Affine, shape and (for NIfTI) header of the input, read from its own header; for a
    DICOM series, read whole (:func:`scseg.io.dicom.read_series`), also the volume."""
    if isinstance(path, DicomSeries):
        dicom = read_series(path)
        return dicom.affine, dicom.array.shape, None, dicom
    if isinstance(path, ChannelFiles):
        affine, shape, header, _ = _input_geometry(path.files[0])
        for other in path.files[1:]:
            if _input_geometry(other)[1] != shape:
                raise InputError(f"{other}: channel file's shape differs from {path.files[0]}'s")
        return affine, (*shape[:3], len(path.files)), header, None
    try:
        if str(path).lower().endswith(NRRD_SUFFIXES):
            import nrrd

            header = nrrd.read_header(str(path))
            return nrrd_affine(header), tuple(int(s) for s in header["sizes"]), None, None
        image = nib.load(path)
        return image.affine, tuple(image.shape), image.header, None
    except Exception as err:  # nibabel and pynrrd raise many types for bad files
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(f"{path}: cannot read volume header ({first})") from None


def _cause(err: BaseException) -> str:
    """The innermost cause's message: MONAI wraps a reader's error in "applying transform
    <object at 0x...>", which says nothing to a user."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return f"{type(err).__name__}: {text}"[:200] if text else type(err).__name__


def sliding_window_probabilities(
    model: LoadedModel,
    x: torch.Tensor,
    roi_size: Sequence[int],
    overlap: float = 0.5,
    sw_batch_size: int = 4,
    tta: bool = False,
    progress: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """Softmax probabilities ``(1, C, *spatial)`` by Gaussian-blended sliding windows (a 2D
    model trained on slices: slice by slice, ``sw_batch_size`` slices at a time), averaged
    over mirrored copies when ``tta``. The logits come and go slab by slab
    (:mod:`scseg.models.slabs`); only the probabilities are kept whole. ``progress`` is
    called with the share of the volume done (0..1, per mirrored pass) as each slab is
    final; what it raises stops the prediction (a viewer's Cancel)."""
    if model.slice_axis is not None:

        def slabs(xi: torch.Tensor, out: torch.Tensor | None) -> SlabStream:
            return slicewise_slabs(model.net, xi, model.slice_axis, sw_batch_size, out,
                                   model.data_info.get("patch_size"))  # fmt: skip

    else:
        windows = window_batch_size(sw_batch_size, model.classes, roi_size)

        def slabs(xi: torch.Tensor, out: torch.Tensor | None) -> SlabStream:
            return sliding_window_slabs(xi, roi_size, windows, model.net, overlap, out=out)

    return model.probabilities(x, tta=tta, slabs=slabs if progress is None else
                               _reporting(slabs, progress))  # fmt: skip


def _reporting(slabs: Callable, progress: Callable[[float], None]) -> Callable:
    """``slabs`` that calls ``progress`` with the share done after each slab."""

    def stream(xi: torch.Tensor, out: torch.Tensor | None):
        for axis, start, stop, part in slabs(xi, out):
            yield axis, start, stop, part
            progress(stop / xi.shape[axis + 2])

    return stream


def preprocess_volume(
    model: LoadedModel,
    path: str | Path | DicomSeries,
    shape: tuple[int, ...] | None = None,
    dicom: DicomVolume | None = None,
    prior: Path | None = None,
    nonfinite: str = "refuse",
) -> tuple[T.Compose, dict]:
    """Applies the training preprocessing to one volume (RAS, spacing, intensity).

    Args:
        model: a 3D model.
        path: a NIfTI/NRRD file, or a DICOM series (read here unless ``dicom`` is given).
        shape: the input's shape, if known (saves reading the header again).
        dicom: the series of ``path``, already read.
        prior: for an atlas-prior model, the registered atlas labels on ``path``'s grid
            (:func:`atlas_prior`), preprocessed as labels into ``data["prior"]``.
        nonfinite: NaN/Inf intensities ``"refuse"``d or ``"fill"``ed
            (:func:`scseg.data.intensity.finite_intensities`).

    Returns:
        the (invertible) transform and its output dict, ``data["image"]`` a MetaTensor
        ``(C, X, Y, Z)``.

    Raises:
        InputError: unreadable file, a 2D model, wrong dimensionality or channel count.
    """
    if not isinstance(path, (DicomSeries, ChannelFiles)):
        path = Path(path)
    if model.input_dims != 3:
        raise InputError(f"{path}: the checkpoint is a 2D image model, not a volume model")
    if shape is None or (isinstance(path, DicomSeries) and dicom is None):
        _, shape, _, dicom = _input_geometry(path)
    channels = shape[3] if len(shape) == 4 else 1
    if len(shape) not in (3, 4):
        raise InputError(f"{path}: expected a 3D volume, got shape {shape}")
    if channels != model.in_channels:
        raise InputError(f"{path}: has {channels} channel(s), the model takes {model.in_channels}")
    info = model.data_info
    intensity = info.get("intensity", "zscore")
    intensity = "zscore" if intensity == "auto" else intensity
    window = info.get("ct_window", (-175, 250))
    keys = ["image", "prior"] if prior is not None else ["image"]
    pre = T.Compose(preprocessing(keys, info.get("spacing"), intensity, window, True,
                                  load=dicom is None, nonfinite=nonfinite,
                                  intensity_first=info.get("intensity_first", False)))  # fmt: skip
    if dicom is not None:
        if prior is not None:
            raise InputError(f"{path}: atlas-prior models take NIfTI or NRRD files, not DICOM")
        meta = {"filename_or_obj": str(path), "original_channel_dim": "no_channel"}
        # As a NIfTI file stores it (float32), so that a series and its NIfTI conversion
        # give the same labels to the last bit; scseg.data.geometry keeps other formats of
        # the same scan on the same grid to within their precision.
        affine = torch.from_numpy(dicom.affine.astype(np.float32).astype(np.float64))
        image = MetaTensor(torch.from_numpy(dicom.array), affine=affine, meta=meta)
        return pre, _applied(pre, {"image": image}, path)
    image = [str(f) for f in path.files] if isinstance(path, ChannelFiles) else str(path)
    if isinstance(image, list) and len(image) == 1:
        image = image[0]
    return pre, _applied(pre, {"image": image, **({"prior": str(prior)} if prior else {})},
                         path)  # fmt: skip


def _applied(pre: T.Compose, data: dict, path) -> dict:
    """``pre(data)``, its errors as :class:`InputError` naming ``path``."""
    try:
        return pre(data)
    except Exception as err:  # a truncated file fails while its data is read
        cause = err
        while cause.__cause__ is not None and not isinstance(cause, NonFiniteError):
            cause = cause.__cause__
        if isinstance(cause, NonFiniteError):
            raise InputError(str(cause)) from None  # it names the file
        raise InputError(f"{path}: cannot read volume data ({_cause(err)})") from None


def model_input(
    model: LoadedModel,
    path: Path | DicomSeries,
    shape: tuple[int, ...] | None = None,
    dicom: DicomVolume | None = None,
    nonfinite: str = "refuse",
) -> tuple[T.Compose, dict, torch.Tensor]:
    """:func:`preprocess_volume`'s transform and data, and what the network takes:
    the image ``(C, *spatial)``, followed for an atlas-prior model by the model's atlas
    registered to the input (:func:`atlas_prior`, preprocessed as labels; on the input's
    own grid in ``data["prior_input"]``)."""
    with tempfile.TemporaryDirectory(prefix="scseg-prior-") as scratch:
        prior = atlas_prior(model, path, Path(scratch)) if model.atlas else None
        pre, data = preprocess_volume(model, path, shape, dicom, prior, nonfinite)
        if prior is not None:
            data["prior_input"] = np.asarray(nib.load(prior).dataobj)
    x = data["image"].as_tensor()
    if prior is not None:
        x = torch.cat([x, data["prior"].as_tensor().to(x.dtype)])
    return pre, data, x


def atlas_prior(model: LoadedModel, path: Path, folder: Path) -> Path:
    """The model's atlas (``model.atlas``: its image and labels) registered to ``path``
    (:func:`scseg.atlas.registration.register_labels`), the labels on ``path``'s grid.

    Raises:
        InputError: a DICOM input, a missing atlas file, or a failed registration.
    """
    if isinstance(path, (DicomSeries, ChannelFiles)):
        raise InputError(f"{path}: atlas-prior models take one NIfTI or NRRD file per scan")
    for kind in ("image", "label"):
        if not Path(model.atlas[kind]).is_file():
            raise InputError(f"{model.atlas[kind]}: the model's atlas {kind} is not on this "
                             "machine: give --atlas IMAGE LABELS")  # fmt: skip
    try:
        return register_labels(path, model.atlas["image"], model.atlas["label"],
                               folder / "prior.nii.gz",
                               model.atlas.get("registration", "affine"))  # fmt: skip
    except ValueError as err:
        raise InputError(str(err)) from None


def predict_volume(
    model: LoadedModel,
    path: str | Path,
    roi_size: Sequence[int] | None = None,
    overlap: float = 0.5,
    sw_batch_size: int = 4,
    tta: bool = False,
    probabilities: bool = False,
    probabilities_file: str | Path | None = None,
    probabilities_dtype: str = "float32",
    regions: str = "masks",
    nonfinite: str = "refuse",
    progress: Callable[[float], None] | None = None,
) -> VolumePrediction:
    """Segments one volume with the training preprocessing, then maps the result back.

    The volume is normalised, oriented to RAS and resampled as in training; sliding-window
    probabilities are mapped back and the label map takes the input's own affine, header
    and shape. An atlas-prior model's correction is mapped back instead, and its
    registered prior added on the input's grid (:mod:`scseg.inference.prior`).

    Memory: one float32 volume of classes x voxels at the training spacing (the logits
    turn into probabilities in place), one batch of windows, and a few input-sized volumes
    for mapping classes back; never all classes on the input grid unless ``probabilities``.

    Args:
        model: from :func:`scseg.inference.load_model`, 3D.
        path: NIfTI (``.nii``/``.nii.gz``) or NRRD file, or a DICOM series
            (:func:`scseg.io.dicom.find_series`; the output's affine is then the series'
            own, in RAS, on its (column, row, slice) grid).
        roi_size: window size (default: the training patch size).
        overlap, sw_batch_size: sliding-window settings.
        tta: average over mirrored copies, along the axes mirrored in training (up to
            8x the time).
        probabilities: also return the class (or region) probabilities (4D, float32, in
            memory: the whole classes x input-grid array).
        probabilities_file: write them to this NIfTI file instead, a few classes at a time
            as they are resampled (:class:`scseg.inference.writing.ClassVolumeWriter`), so
            the whole array never exists; ``probabilities_dtype`` ``"float32"`` or
            ``"uint8"`` (quantised, 4x smaller).
        regions: for a region model (``multilabel``), ``"masks"``: ``labels`` holds one
            mask per region, 4D ``(*input, R)`` uint8, regions in the model's order; or
            ``"labelmap"``: one label map, each region writing its ``region_order`` value
            (default ``1..R``) where predicted, later regions over earlier ones.
        nonfinite: NaN/Inf intensities ``"refuse"``d (an :class:`InputError`) or
            ``"fill"``ed with the lowest finite intensity and reported
            (:func:`scseg.data.intensity.finite_intensities`).
        progress: see :func:`sliding_window_probabilities`.

    Raises:
        InputError: unreadable file, wrong dimensionality or channel count, or NaN/Inf
            intensities refused.
        SeriesError: a DICOM series that is not a volume (:func:`scseg.io.dicom.read_series`).
    """
    if not isinstance(path, (DicomSeries, ChannelFiles)):
        path = Path(path)
    affine, shape, header, dicom = _input_geometry(path)
    pre, data, x = model_input(model, path, shape, dicom, nonfinite)
    probs, invert = _network_output(model, path, data, x, roi_size, overlap, sw_batch_size, tta,
                                    progress)  # fmt: skip
    image = data["image"]
    grid = tuple(shape[:3])
    if model.multilabel:  # masks, each region's probabilities above 0.5
        invert = functools.partial(_invert_regions, path=path)
    values, full = _class_output(
        invert, pre, image, probs, grid, probabilities, probabilities_file, probabilities_dtype,
        affine, header,
    )  # fmt: skip
    if model.multilabel:
        labels = _region_output(model, values, regions, affine, header)
    elif values.shape != grid:
        raise InputError(f"{path}: internal error: output grid {values.shape} != {grid}")
    else:
        values = values.astype(label_dtype(model.classes))
        labels = image_like(values, affine, header, "label", model.classes - 1)
    out = VolumePrediction(labels, series=dicom)
    if full is not None:
        out.probabilities = image_like(full, affine, header, "none", 1.0)
    return out


def _class_output(invert, pre, image, probs, grid, keep, file, dtype, affine, header):
    """Labels (and probabilities, if ``keep``) on the input grid; with ``file`` the
    probabilities are written there class by class as they are mapped back."""
    if file is None:
        return invert(pre, image, probs, grid, keep)
    header4d = header_like(affine, header, (*grid, probs.shape[0]), np.float32, "none", 1.0)
    with ClassVolumeWriter(file, header4d, dtype) as writer:
        return invert(pre, image, probs, grid, keep, writer.write)


def _network_output(
    model: LoadedModel,
    path,
    data: dict,
    x: torch.Tensor,
    roi_size,
    overlap,
    sw_batch_size,
    tta,
    progress=None,
) -> tuple[torch.Tensor, Callable]:
    """What the network gives at the training spacing, ``(C, *preprocessed)``, and the
    function that maps it back (:func:`_invert_argmax`): probabilities; for an atlas-prior
    model, the correction, mapped back and added to the prior on the input's own grid."""
    roi = list(roi_size or model.data_info.get("patch_size") or [])
    if len(roi) != 3 and model.slice_axis is None:
        raise InputError(f"{path}: no sliding-window size: give roi_size (3 values)")
    if model.atlas:
        return corrections_and_inversion(model, x, data, roi, overlap, sw_batch_size, tta)
    probs = sliding_window_probabilities(model, x[None].float(), roi, overlap, sw_batch_size, tta,
                                         progress)  # fmt: skip
    return probs[0], _invert_argmax


def _invert_regions(pre: T.Compose, image: MetaTensor, probs: torch.Tensor, shape: tuple,
                    keep: bool = False, sink: Callable | None = None,
                    path=None) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """Region probabilities ``(R, *preprocessed)`` back on the input grid a few regions at
    a time, each thresholded at 0.5: masks ``(R, *input)`` (bool), and when ``keep`` the
    probabilities ``(*input, R)``; ``sink`` gets each chunk's ``(k, *input)``.

    Raises:
        InputError: naming ``path`` if the inversion does not land on the input grid.
    """
    masks = np.zeros((probs.shape[0], *shape), bool)
    full = np.empty((*shape, probs.shape[0]), np.float32) if keep else None
    resample = checked_resampler(pre, image, shape)
    for start, chunk in resampled_chunks(pre, image, probs, shape, resample):
        if tuple(chunk.shape[1:]) != shape:
            raise InputError(f"{path}: internal error: output grid {chunk.shape[1:]} != {shape}")
        masks[start : start + chunk.shape[0]] = (chunk > 0.5).numpy()
        if sink is not None:
            sink(chunk.numpy())
        if keep:
            full[..., start : start + len(chunk)] = np.moveaxis(chunk.numpy(), 0, -1)
    return masks, full


def _region_output(model: LoadedModel, masks: np.ndarray, mode: str, affine, header):
    from scseg.data.labels import regions_to_label_map

    if mode == "masks":
        array = np.ascontiguousarray(np.moveaxis(masks, 0, -1).astype(np.uint8))
        return image_like(array, affine, header, "label", 1)
    if mode != "labelmap":
        raise ValueError(f"regions must be masks or labelmap, got {mode!r}")
    order = model.data_info.get("region_order") or list(range(1, masks.shape[0] + 1))
    labels = regions_to_label_map(masks, order)
    return image_like(labels, affine, header, "label", max(order))


def _invert_argmax(
    pre: T.Compose,
    image: MetaTensor,
    probs: torch.Tensor,
    shape: tuple[int, ...],
    keep: bool = False,
    sink: Callable[[np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Maps class probabilities ``(C, *preprocessed)`` back to the input grid a few
    classes at a time (:func:`~scseg.inference.inversion.resampled_chunks`: separable where
    the grids are aligned, else MONAI ``Invertd``), keeping a running maximum and argmax.

    Resampling is per channel, so each chunk's values equal those of inverting all classes
    at once; a later chunk wins only where it is strictly larger, so ties go to the lower
    class as ``argmax`` over all classes gives them. The memory beyond the preprocessed
    probabilities is two input-sized volumes and one chunk, whatever the number of classes
    (plus the full ``(*input, C)`` float32 probabilities when ``keep``). ``sink`` gets
    each chunk's probabilities ``(k, *input)`` in class order.

    Returns:
        the label map (int16, or int32 past 32767 classes) and, when ``keep``, the
        probabilities ``(*input, C)``.
    """
    full = np.empty((*shape, probs.shape[0]), np.float32) if keep else None

    def kept(chunks):
        for start, chunk in chunks:
            if tuple(chunk.shape[1:]) == shape:
                if sink is not None:
                    sink(chunk.numpy())
                if keep:
                    full[..., start : start + len(chunk)] = np.moveaxis(chunk.numpy(), 0, -1)
            yield start, chunk
            del chunk  # before the next chunk is made

    resample = checked_resampler(pre, image, shape)
    if resample is not None and not keep and sink is None:  # labels alone: the boundaries
        labels = settled_argmax(probs, resample, shape)
        if labels is not None:
            return labels, None
        return resample.argmax(probs).numpy(), None  # every class, tile by tile
    chunks = kept(resampled_chunks(pre, image, probs, shape, resample))
    labels, _ = running_argmax(chunks, shape, probs.shape[0])
    return labels, full if labels.shape == shape else None
