"""Ensembles of configurations: a 3D model and a slice-wise one (or any models of the same
classes) predicting as one, by the mean of their probabilities on the input's own grid.

The folds of one plan share their preprocessing, so :class:`~scseg.inference.checkpoint.
Ensemble` averages them window by window. Configurations do not (their spacing, patch,
even their dimensions differ), so each predicts the whole input, maps its probabilities
back to the input's grid, and the mean of those gives the labels, as nnU-Net ensembles its
configurations (``nnUNetv2_ensemble``: the mean of the softmax outputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scseg.inference.argmax import label_dtype
from scseg.inference.checkpoint import CheckpointError, LoadedModel

# what the members of an ensemble of configurations must share: the meaning of each output
SAME_OUTPUT = ("class_names", "regions", "region_order")


@dataclass
class ConfigurationEnsemble:
    """Models of different configurations (each one a model or the folds of one) whose
    probabilities on the input grid are averaged. It answers what prediction asks of a
    :class:`~scseg.inference.checkpoint.LoadedModel` about inputs and outputs."""

    members: list[LoadedModel]
    names: list[str]

    def __post_init__(self) -> None:
        check_members(self.names, self.members)

    @property
    def first(self) -> LoadedModel:
        return self.members[0]

    @property
    def classes(self) -> int:
        return self.first.classes

    @property
    def in_channels(self) -> int:
        return self.first.in_channels

    @property
    def class_names(self) -> list[str]:
        return self.first.class_names

    @property
    def multilabel(self) -> bool:
        return self.first.multilabel

    @property
    def data_info(self) -> dict:
        return self.first.data_info

    @property
    def input_dims(self) -> int:
        return self.first.input_dims

    @property
    def atlas(self) -> None:
        return None


def check_members(names: Sequence[str], members: Sequence[LoadedModel]) -> None:
    """Raises :class:`CheckpointError` naming the member whose inputs or outputs differ
    from the first one's: channels, classes, class names, regions, 2D images against
    volumes; or that refines an atlas (its prior is not a probability of its own)."""
    if len(members) < 2 or len(names) != len(members):
        raise CheckpointError(f"an ensemble needs two or more named members, got {list(names)}")
    first = members[0]
    for name, member in zip(names, members, strict=True):
        if member.atlas:
            raise CheckpointError(f"ensemble member {name}: refines an atlas; not ensembled")
        for what, a, b in (
            ("in_channels", first.in_channels, member.in_channels),
            ("classes", first.classes, member.classes),
            ("multilabel", first.multilabel, member.multilabel),
            ("input dimensions", first.input_dims, member.input_dims),
            *[(k, first.data_info.get(k), member.data_info.get(k)) for k in SAME_OUTPUT],
        ):
            if a != b:
                raise CheckpointError(f"ensemble member {name}: {what} {b} differs from "
                                      f"{names[0]}'s {a}")  # fmt: skip


def predict_ensemble_volume(
    ensemble: ConfigurationEnsemble,
    path,
    tta: bool = False,
    probabilities: bool = False,
    probabilities_file: str | Path | None = None,
    probabilities_dtype: str = "float32",
    regions: str = "masks",
    nonfinite: str = "refuse",
    progress=None,
):
    """:func:`~scseg.inference.volume.predict_volume` for an ensemble: each member
    predicts the volume with its own preprocessing and windows, its probabilities mapped
    back to the input grid; the labels are the argmax of their mean (regions: the mean
    above 0.5). Memory: two classes x input-grid float32 arrays beyond one member's.

    ``progress`` is called with 0..1 over all members.

    Returns:
        a :class:`~scseg.inference.volume.VolumePrediction`; its ``probabilities`` the
        mean when ``probabilities`` (``probabilities_file``: written there instead).
    """
    from scseg.inference.volume import VolumePrediction, _region_output, predict_volume
    from scseg.inference.writing import ClassVolumeWriter, header_like, image_like

    total, n = None, len(ensemble.members)
    for k, member in enumerate(ensemble.members):
        share = None if progress is None else (lambda s, k=k: progress((k + s) / n))
        result = predict_volume(member, path, tta=tta, probabilities=True, nonfinite=nonfinite,
                                progress=share)  # fmt: skip
        values = np.asarray(result.probabilities.dataobj, np.float32)
        if total is None:  # the geometry is the input's, whichever member gives it
            total, labels, series = values, result.labels, result.series
        else:
            np.add(total, values, out=total)
        del result, values
    mean = np.divide(total, len(ensemble.members), out=total)
    affine, header = labels.affine, labels.header
    if ensemble.multilabel:
        masks = np.moveaxis(mean > 0.5, -1, 0)
        labels = _region_output(ensemble, masks, regions, affine, header)
    else:
        values = mean.argmax(-1).astype(label_dtype(ensemble.classes))
        labels = image_like(values, affine, header, "label", ensemble.classes - 1)
    out = VolumePrediction(labels, series=series)
    if probabilities_file is not None:
        header4d = header_like(affine, header, mean.shape, np.float32, "none", 1.0)
        with ClassVolumeWriter(probabilities_file, header4d, probabilities_dtype) as writer:
            for c in range(mean.shape[-1]):
                writer.write(np.ascontiguousarray(mean[..., c])[None])
    elif probabilities:
        out.probabilities = image_like(mean, affine, header, "none", 1.0)
    return out


def predict_ensemble_image(
    ensemble: ConfigurationEnsemble, path, tta: bool = False, nonfinite: str = "refuse"
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~scseg.inference.image.predict_image` for an ensemble of 2D models: the
    argmax of the mean of their probabilities ``(C, H, W)``."""
    from scseg.inference.image import predict_image

    if ensemble.multilabel:
        raise ValueError(f"{path}: 2D region models are not ensembled")
    probs = sum(predict_image(m, path, tta, nonfinite)[1] for m in ensemble.members)
    probs = probs / len(ensemble.members)
    labels = probs.argmax(0).astype(label_dtype(ensemble.classes))
    return labels, probs.astype(np.float32)
