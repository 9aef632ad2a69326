"""DICOM series in: find the series under a folder, check each, read it as a volume.

Files are grouped by ``SeriesInstanceUID`` (pydicom, headers only); a series is sorted,
checked for regular spacing and read by highdicom (:func:`highdicom.get_volume_from_series`:
slices ordered by their position along the slice normal, so oblique series and files stored
in any order come out right, with the modality rescale applied). MONAI's ``PydicomReader``
orders slices by ``InstanceNumber`` and takes the spacing from the z coordinate alone, which
is wrong for files out of order and for sagittal or oblique series.

The volume is given as NIfTI stores it: axes (column, row, slice) and an affine to RAS
world coordinates (DICOM's patient space is LPS).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# not objects to segment: DICOMDIR files (an index of the media), and Segmentation objects
# (scseg predict's own DICOM-SEG outputs among them, when the output folder lies in the input)
_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"
_SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"
_HEADER_TAGS = ["SeriesInstanceUID", "SeriesNumber", "SOPClassUID", "Modality", "Rows",
                "Columns", "NumberOfFrames", "ImagePositionPatient"]  # fmt: skip
# (slice, row, col) -> (col, row, slice)
_TO_XYZ = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class SeriesError(ValueError):
    """A DICOM series cannot be read as a volume; the message names its folder."""


class SeriesWarning(UserWarning):
    """A DICOM series was read, but lacks something a user should know of."""


@dataclass(frozen=True)
class DicomSeries:
    """One series found on disk.

    Attributes:
        folder: the folder that holds its files.
        uid: ``SeriesInstanceUID``.
        files: its files, in the order found (reading sorts them by position).
        name: the output name: the folder's name (its path below the searched folder),
            with ``_s<SeriesNumber>`` when the folder holds several series.
        label: how messages name it: the folder, and the series when the folder holds
            several.
    """

    folder: Path
    uid: str
    files: tuple[Path, ...]
    name: str
    label: str

    def __str__(self) -> str:
        return self.label


@dataclass
class DicomVolume:
    """A series read as a volume.

    Attributes:
        array: ``(columns, rows, slices)`` float32, modality values (HU for CT).
        affine: voxel to RAS world (mm), as NIfTI stores it.
        datasets: the files' datasets in slice order (index ``k`` of ``array``), without
            their pixel data; what a DICOM-SEG refers to.
    """

    array: np.ndarray
    affine: np.ndarray
    datasets: list


def is_dicom_file(path: Path) -> bool:
    """A DICOM Part 10 file (the "DICM" marker after the 128-byte preamble)."""
    from pydicom.misc import is_dicom

    try:
        return path.is_file() and is_dicom(path)
    except OSError:
        return False


def find_series(folder: str | Path) -> list[DicomSeries]:
    """Every DICOM series in ``folder`` and its subfolders, sorted by folder then number.

    Files of one series in one folder are one series; a series split over folders counts
    once per folder. Files that are not DICOM, DICOMDIR index files and Segmentation
    objects (DICOM-SEG, such as our own outputs) are ignored.

    A DICOM file whose header cannot be read (or has no ``SeriesInstanceUID``) becomes a
    series of its own, so that reading it reports the file (and the others still run).
    """
    import pydicom

    root = Path(folder)
    groups: dict[tuple[Path, str], list[tuple[Path, object]]] = defaultdict(list)
    unreadable = []
    for path in sorted(p for p in root.rglob("*") if is_dicom_file(p)):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
        except Exception:  # pydicom raises many types for damaged headers
            ds = None
        meta = getattr(ds, "file_meta", None)
        if str(getattr(meta, "MediaStorageSOPClassUID", "")) == _MEDIA_DIRECTORY:
            continue
        if ds is not None and str(ds.get("SOPClassUID", "")) == _SEGMENTATION:
            continue
        uid = str(ds.get("SeriesInstanceUID", "")) if ds is not None else ""
        if not uid:  # damaged: a series of its own, reported when read
            name = "_".join(path.relative_to(root).parts)
            unreadable.append(DicomSeries(path.parent, "", (path,), name, str(path)))
            continue
        groups[(path.parent, uid)].append((path, ds))
    numbers: dict[Path, list] = defaultdict(list)
    for (where, _), members in groups.items():
        numbers[where].append(members[0][1].get("SeriesNumber"))
    found = []
    for (where, uid), members in groups.items():
        relative = where.relative_to(root)
        name, label = "_".join(relative.parts) or root.resolve().name, str(where)
        if len(numbers[where]) > 1:  # several series in one folder: name each
            number = members[0][1].get("SeriesNumber")
            name += f"_s{number}" if number is not None else ""
            if number is None or numbers[where].count(number) > 1:
                name += "_" + hashlib.sha1(uid.encode()).hexdigest()[:8]
            label += f" (series {number}, {uid})" if number is not None else f" (series {uid})"
        found.append(DicomSeries(where, uid, tuple(p for p, _ in members), name, label))
    return sorted(found + unreadable, key=lambda s: (str(s.folder), s.name))


def _gaps(datasets: Sequence) -> str:
    """The distinct distances between neighbouring slices along the normal (for a message)."""
    row, col = np.asarray(datasets[0].ImageOrientationPatient, float).reshape(2, 3)
    normal = np.cross(row, col)
    along = np.sort([float(np.dot(normal, np.asarray(d.ImagePositionPatient, float)))
                     for d in datasets])  # fmt: skip
    gaps = sorted({round(float(g), 2) for g in np.diff(along)})
    return ", ".join(f"{g:g}" for g in gaps[:4]) + (" ..." if len(gaps) > 4 else "")


def _gantry_tilt(datasets: Sequence) -> float | None:
    """The angle (degrees) between the slice normal and the step from slice to slice,
    where the slices are evenly spaced but step off their normal (a CT gantry tilted
    during the scan); ``None`` for any other layout."""
    row, col = np.asarray(datasets[0].ImageOrientationPatient, float).reshape(2, 3)
    normal = np.cross(row, col)
    positions = np.array([np.asarray(d.ImagePositionPatient, float) for d in datasets])
    positions = positions[np.argsort(positions @ normal)]
    steps = np.diff(positions, axis=0)
    mean = steps.mean(0)
    if np.linalg.norm(mean) == 0 or np.abs(steps - mean).max() > 0.01 * np.linalg.norm(mean):
        return None  # uneven: a missing slice, not a tilt
    angle = float(np.degrees(np.arccos(abs(mean @ normal) / np.linalg.norm(mean))))
    return angle if angle > 0.01 else None


def _frame_of_reference(datasets: list, series: DicomSeries) -> None:
    """Anonymisers and some exporters drop the Frame of Reference UID, which highdicom
    needs to place the slices; ITK and dcm2niix read such series from the image position
    and orientation alone, and so do we: one UID, derived from the series', is given to
    the files in memory (and to a DICOM-SEG made from them), with a warning."""
    if all("FrameOfReferenceUID" in d for d in datasets):
        return
    import warnings

    from pydicom.uid import generate_uid

    warnings.warn(
        f"{series}: no Frame of Reference UID (0020,0052) in the header; the slices are "
        "placed by Image Position and Orientation (Patient) alone",
        SeriesWarning,
        stacklevel=3,
    )
    uid = generate_uid(entropy_srcs=[series.uid, "FrameOfReferenceUID"])
    for ds in datasets:
        ds.FrameOfReferenceUID = ds.get("FrameOfReferenceUID") or uid


def read_series(series: DicomSeries) -> DicomVolume:
    """Reads one series as a volume, after checking that it is one.

    Raises:
        SeriesError: naming the series and the problem: files that are not images, a
            multi-frame object, one slice, mixed slice sizes or orientations, slices not
            evenly spaced (a missing slice), a gantry tilt, or pixel data that cannot be
            decoded.

    Warns:
        SeriesWarning: no Frame of Reference UID (the series is read all the same).
    """
    import highdicom as hd
    import pydicom
    from highdicom.spatial import get_series_volume_positions

    where = str(series)
    try:
        datasets = [pydicom.dcmread(p) for p in series.files]
    except Exception as err:
        raise SeriesError(f"{where}: cannot read DICOM file ({err})") from None
    if not series.uid:
        raise SeriesError(f"{where}: no SeriesInstanceUID in the header: a damaged or "
                          "truncated file?")  # fmt: skip
    no_image = [(p, d) for p, d in zip(series.files, datasets, strict=True)
                if "PixelData" not in d]  # fmt: skip
    if no_image:
        (first, ds), *_ = no_image
        kind = getattr(ds.get("SOPClassUID"), "name", "") or "no pixel data"
        raise SeriesError(f"{where}: {len(no_image)} of {len(datasets)} file(s) hold no image "
                          f"({kind}), e.g. {first.name}")  # fmt: skip
    if any(int(d.get("NumberOfFrames", 1) or 1) > 1 for d in datasets):
        raise SeriesError(f"{where}: a multi-frame object; only series of single-frame images "
                          "are read (convert it to NIfTI, e.g. with dcm2niix)")  # fmt: skip
    placed = ("ImagePositionPatient", "ImageOrientationPatient")
    missing = [p.name for p, d in zip(series.files, datasets, strict=True)
               if not all(tag in d for tag in placed)]  # fmt: skip
    if missing:
        raise SeriesError(f"{where}: no patient position/orientation in {len(missing)} file(s), "
                          f"e.g. {missing[0]} (not a cross-sectional image)")  # fmt: skip
    if len(datasets) < 2:
        raise SeriesError(f"{where}: one slice; a volume needs at least two")
    sizes = sorted({(int(d.Rows), int(d.Columns)) for d in datasets})
    if len(sizes) > 1:
        listed = ", ".join(f"{r}x{c}" for r, c in sizes)
        raise SeriesError(f"{where}: slices of different sizes ({listed} rows x columns)")
    orientations = {tuple(np.round(np.asarray(d.ImageOrientationPatient, float), 4))
                    for d in datasets}  # fmt: skip
    if len(orientations) > 1:
        raise SeriesError(f"{where}: slices in {len(orientations)} different orientations "
                          "(a localiser or radial series, not a volume)")  # fmt: skip
    try:
        _, positions = get_series_volume_positions(datasets)
    except Exception as err:
        raise SeriesError(f"{where}: slice positions do not form a volume ({err})") from None
    if positions is None:
        if (tilt := _gantry_tilt(datasets)) is not None:
            raise SeriesError(
                f"{where}: gantry tilt of {tilt:.1f} degrees (slice positions step off the "
                "slice normal); scseg reads untilted series only: resample it first, e.g. "
                "with dcm2niix, which corrects the tilt"
            )
        raise SeriesError(f"{where}: slices not evenly spaced along their normal (spacings "
                          f"{_gaps(datasets)} mm): a missing or duplicated slice?")  # fmt: skip
    ordered = [datasets[positions.index(i)] for i in range(len(datasets))]
    _frame_of_reference(ordered, series)
    try:
        volume = hd.get_volume_from_series(ordered, dtype=np.float32)
    except Exception as err:  # undecodable pixel data, missing plugin, ...
        raise SeriesError(f"{where}: cannot read the series' pixel data ({err})") from None
    if volume.array.ndim != 3:
        raise SeriesError(f"{where}: colour images; a volume model takes grey values")
    for ds in ordered:  # the segmentation refers to them; their pixels are in the array
        del ds.PixelData
    array = np.ascontiguousarray(volume.array.transpose(2, 1, 0))
    return DicomVolume(array, _LPS_TO_RAS @ volume.affine @ _TO_XYZ, ordered)
