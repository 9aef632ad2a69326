"""Checks of a dataset before training, reported all at once and naming the cases.

Each data module runs them in ``setup`` unless ``validate: false``:

* files missing, empty or unreadable;
* image and label of different shape, or (3D) different geometry;
* label values outside ``0..classes-1`` (other than the ignore index);
* NaN or infinite intensities;
* the same case name, or the same image content, in both training and validation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scseg.data.labels import check_region_values
from scseg.data.layouts import image_files
from scseg.io.volumes import read_volume


class DataValidationError(ValueError):
    """A dataset failed validation; the message lists every problem by case."""


@dataclass
class Report:
    root: Path
    problems: list[str] = field(default_factory=list)

    def add(self, case: str, problem: str) -> None:
        self.problems.append(f"{case}: {problem}")

    def raise_if_any(self) -> None:
        if self.problems:
            shown = "\n".join(f"  - {p}" for p in self.problems[:50])
            more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
            raise DataValidationError(
                f"{self.root}: {len(self.problems)} problem(s) found before training "
                f"(set data.validate: false to skip these checks):\n{shown}{more}"
            )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_labels(report: Report, case: str, labels: np.ndarray, classes: int, ignore: int | None):
    values = np.unique(labels)
    bad = [int(v) for v in values if (v < 0 or v >= classes) and v != ignore]
    if bad:
        report.add(case, f"label values {bad[:10]} outside 0..{classes - 1}")


def check_region_masks(report: Report, case: str, labels: np.ndarray, regions: int) -> None:
    """A label file of one binary mask per region: 4D, ``regions`` masks, values 0 and 1."""
    if labels.ndim != 4 or labels.shape[3] != regions:
        report.add(case, f"label shape {labels.shape}: region_masks needs a 4D file of "
                         f"{regions} masks (one per region)")  # fmt: skip
        return
    if bad := [int(v) for v in np.unique(labels) if v not in (0, 1)]:
        report.add(case, f"region masks hold values {bad[:10]}, not only 0 and 1")


def check_volume_pair(report: Report, case: str, image, image_affine, label, label_affine) -> bool:
    """Reports a 3D image and label of different shape or geometry; ``True`` if they match."""
    if image.shape[:3] != label.shape[:3]:
        report.add(case, f"image {image.shape[:3]} and label {label.shape[:3]} differ in shape")
        return False
    if not np.allclose(image_affine, label_affine, atol=1e-3):
        report.add(case, "image and label geometry (affine) differ")
        return False
    return True


def check_image_mask(report: Report, case: str, image: np.ndarray, mask: np.ndarray) -> bool:
    """Reports a 2D image and mask of different size; ``True`` if they match."""
    if image.shape[:2] != mask.shape:
        report.add(case, f"image {image.shape[:2]} and mask {mask.shape} differ in size")
        return False
    return True


def check_intensities(report: Report, case: str, image: np.ndarray) -> None:
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        report.add(case, f"{int((~np.isfinite(image)).sum())} NaN/Inf intensity value(s)")


def validate_pairs(
    root: Path,
    split: dict[str, Sequence[str]],
    files: Callable[[str], tuple[Path, Path]],
    load: Callable[[Report, str, Path, Path], None],
) -> None:
    """Runs the common checks and ``load`` (the layout's own checks) on every case.

    Args:
        split: ``{"train": [...], "val": [...]}``.
        files: case -> (image path, label path).
        load: reads one pair and adds its problems to the report.

    Raises:
        DataValidationError: listing every problem found.
    """
    report = Report(root)
    for case in sorted(set(split["train"]) & set(split["val"])):
        report.add(case, "in both train and val")
    digests: dict[str, dict[str, str]] = {"train": {}, "val": {}}
    for part in ("train", "val"):
        for case in split[part]:
            try:
                image, label = files(case)
            except FileNotFoundError as err:
                report.add(case, str(err))
                continue
            problem = False
            for path in [*(image if isinstance(image, list) else [image]), label]:
                if not path.is_file():
                    report.add(case, f"{path} is missing")
                    problem = True
                elif path.stat().st_size == 0:
                    report.add(case, f"{path} is empty")
                    problem = True
            if problem:
                continue
            digests[part][case] = "".join(
                _digest(p) for p in (image if isinstance(image, list) else [image])
            )
            try:
                load(report, case, image, label)
            except Exception as err:  # readers raise many types for bad files
                first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
                report.add(case, f"cannot be read ({first})")
    by_digest = {d: c for c, d in digests["train"].items()}
    for case, digest in digests["val"].items():
        if digest in by_digest:
            report.add(case, f"validation image identical to training case {by_digest[digest]}")
    report.raise_if_any()


def validate_msd(
    root: Path,
    split: dict,
    pairs: dict[str, dict[str, str]],
    in_channels: int,
    classes: int,
    scheme,
    ignore_index: int | None,
    multilabel: bool,
) -> None:
    """Checks every case of an MSD-layout split (``MSD3DDataModule.validate``): geometry,
    channels, intensities and labels (class values, region masks or region values of
    ``scheme``, :mod:`scseg.data.labels`).

    Raises:
        DataValidationError: listing the bad cases.
    """

    def files(case: str) -> tuple[Path | list[Path], Path]:
        images = image_files(pairs[case])
        return (images[0] if len(images) == 1 else images), Path(pairs[case]["label"])

    def load(report, case: str, image_path: Path, label_path: Path) -> None:
        image, image_affine = read_volume(image_path)
        label, label_affine = read_volume(label_path)
        check_volume_pair(report, case, image, image_affine, label, label_affine)
        channels = image.shape[3] if image.ndim == 4 else 1
        if channels != in_channels:
            report.add(case, f"{channels} channel(s), the config says {in_channels}")
        check_intensities(report, case, image)
        if scheme is not None and scheme.masks:
            check_region_masks(report, case, label, classes)
        elif multilabel:
            present.update(int(v) for v in np.unique(label))
        elif label.ndim == 4 and label.shape[3] > 1:
            report.add(case, f"label file holds {label.shape[3]} masks (4D): overlapping "
                             "regions need region_masks in dataset.json")  # fmt: skip
        else:
            check_labels(report, case, label, classes, ignore_index)

    present: set[int] = set()
    validate_pairs(root, split, files, load)
    if present:
        check_region_values(scheme, present, str(root / "dataset.json"))
