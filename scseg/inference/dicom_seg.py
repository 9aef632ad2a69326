"""DICOM-SEG output: a label map as a Segmentation object that refers to its source series.

Written with highdicom as a binary segmentation (the type every reader takes: highdicom,
pydicom-seg, OHIF, 3D Slicer): one segment per foreground class, labelled with the class
name, one frame per segment and source slice where that segment is present. Class 0 is
the background and is not a segment (DICOM-SEG has no segment 0). Regions that overlap
(a model of regions) are segments whose frames overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scseg.io.dicom import DicomVolume


def segmentation(
    labels: np.ndarray,
    series: DicomVolume,
    class_names: Sequence[str],
    model_name: str = "scseg U-Net",
):
    """The DICOM-SEG dataset of a label map on a series' grid.

    Args:
        labels: ``(columns, rows, slices)`` integer labels, as the NIfTI output holds them
            (the series' own grid, slices in :attr:`DicomVolume.datasets` order), or
            ``(columns, rows, slices, R)`` masks of regions that may overlap (the standard
            allows overlapping segments in a binary segmentation).
        series: the source series as read by :func:`scseg.io.dicom.read_series`.
        class_names: names of classes ``0..C-1``; 1.. become the segment labels.
        model_name: the algorithm name recorded with each segment.

    Returns:
        a :class:`highdicom.seg.Segmentation` (a pydicom ``Dataset``).

    Raises:
        ValueError: if the label map does not fit the series or holds unknown classes.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from scseg import __version__

    expected = (int(series.datasets[0].Columns), int(series.datasets[0].Rows),
                len(series.datasets))  # fmt: skip
    if tuple(labels.shape[:3]) != expected:
        raise ValueError(f"label map {labels.shape} does not fit the series grid {expected}")
    overlapping = labels.ndim == 4
    if overlapping and labels.shape[3] != len(class_names) - 1:
        raise ValueError(f"{len(class_names) - 1} region names for {labels.shape[3]} masks")
    if len(class_names) < 2:
        raise ValueError("a segmentation needs at least one class besides the background")
    if not overlapping and (
        int(labels.max(initial=0)) >= len(class_names) or int(labels.min(initial=0)) < 0
    ):
        raise ValueError(f"labels outside 0..{len(class_names) - 1}")
    algorithm = hd.AlgorithmIdentificationSequence(
        name=model_name, version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    segments = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=str(name)[:64],  # LO: at most 64 characters
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for number, name in enumerate(class_names[1:], start=1)
    ]
    if overlapping:  # (slice, row, col, segment): binary masks that may overlap
        frames = np.ascontiguousarray(labels.transpose(2, 1, 0, 3) > 0)
    else:
        dtype = np.uint8 if len(class_names) <= 256 else np.uint16
        frames = np.ascontiguousarray(labels.transpose(2, 1, 0), dtype=dtype)  # (slice, row, col)
    source = series.datasets[0]
    return hd.seg.Segmentation(
        source_images=series.datasets,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments,
        series_instance_uid=hd.UID(),
        series_number=int(source.get("SeriesNumber") or 0) + 1000,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="scseg",
        manufacturer_model_name=model_name[:64],
        software_versions=__version__,
        device_serial_number="0",
        series_description=f"scseg {model_name}"[:64],
    )


def write_dicom_seg(
    path: str | Path,
    labels: np.ndarray,
    series: DicomVolume,
    class_names: Sequence[str],
    model_name: str = "scseg U-Net",
) -> None:
    """Writes :func:`segmentation` to ``path`` (a ``.dcm`` file)."""
    segmentation(labels, series, class_names, model_name).save_as(str(path))
