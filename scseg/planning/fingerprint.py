"""A dataset's fingerprint: what planning a training needs to know about its cases.

Read once over every case (with the data modules' checks): image sizes and spacings,
channels, foreground intensity statistics per channel, the label values present and
their voxel counts. nnU-Net's ``DatasetFingerprintExtractor`` collects the same; like it,
intensities are sampled from foreground voxels (at most 10,000 per case and channel).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scseg.data.labels import LabelScheme, declared_classes, label_scheme
from scseg.data.validation import (
    Report,
    check_image_mask,
    check_intensities,
    check_volume_pair,
    validate_pairs,
)

SAMPLES_PER_CASE = 10_000


@dataclass
class Case:
    name: str
    image: Path
    label: Path
    shape: tuple[int, ...]  # spatial, RAS-oriented for volumes
    spacing: tuple[float, ...]  # mm along each RAS axis (1.0 per pixel for 2D images)
    channels: int
    counts: dict[int, int]  # label value -> voxels


@dataclass
class Fingerprint:
    """What :func:`fingerprint` found; ``layout`` is ``"msd"`` (3D) or ``"folder2d"``."""

    root: Path
    layout: str
    cases: list[Case]
    meta: dict = field(default_factory=dict)  # dataset.json, if any
    foreground: list[np.ndarray] = field(default_factory=list)  # sampled, per channel
    lowest: list[float] = field(default_factory=list)  # per channel, over all voxels

    @property
    def spatial_dims(self) -> int:
        return len(self.cases[0].shape)

    @property
    def channels(self) -> int:
        return self.cases[0].channels

    @functools.cached_property
    def scheme(self) -> LabelScheme | None:
        """What ``dataset.json`` says the label values mean (:mod:`scseg.data.labels`):
        an ignore value, regions, or (``None``) plain classes."""
        if self.layout != "msd":
            return None
        scheme = label_scheme(self.meta, str(self.root / "dataset.json"))
        return scheme if scheme and (scheme.multilabel or scheme.ignore is not None) else None

    @functools.cached_property
    def declared(self) -> list[str] | None:
        """The class names ``dataset.json`` gives by value, if any
        (:func:`scseg.data.labels.declared_classes`)."""
        if self.layout != "msd":
            return None
        return declared_classes(self.meta, str(self.root / "dataset.json"))

    @property
    def classes(self) -> int:
        """Output channels: classes with background (every class ``dataset.json`` names,
        found in the data or not), or regions."""
        if self.scheme is not None:
            return self.scheme.channels
        found = max(max(c.counts) for c in self.cases) + 1
        return max(found, len(self.declared or []))

    def annotated_share(self) -> float | None:
        """The share of voxels that are annotated (not the ignore value), if sparse."""
        ignore = self.scheme.ignore if self.scheme else None
        if ignore is None:
            return None
        total = sum(sum(c.counts.values()) for c in self.cases)
        return 1 - sum(c.counts.get(ignore, 0) for c in self.cases) / max(1, total)

    def region_voxels(self, case: Case) -> list[int]:
        """Voxels in each region of a case (regions from values, or one mask each)."""
        scheme = self.scheme
        if scheme.masks:
            return [case.counts.get(r + 1, 0) for r in range(scheme.channels)]
        return [sum(case.counts.get(v, 0) for v in members) for members in scheme.regions]

    @property
    def spacings(self) -> np.ndarray:
        return np.array([c.spacing for c in self.cases], dtype=float)

    @property
    def shapes(self) -> np.ndarray:
        return np.array([c.shape for c in self.cases], dtype=float)

    def modalities(self) -> list[str]:
        """Per channel, ``dataset.json``'s modality, else ``"CT"`` where intensities reach
        below -500 (air in Hounsfield units; MR and microscopy stay above), else ``"MR"``
        (volumes) or ``"image"``."""
        given = self.meta.get("channel_names") or self.meta.get("modality") or {}
        found = []
        for channel in range(self.channels):
            name = given.get(str(channel))
            if name is None:
                ct = self.layout == "msd" and self.lowest[channel] <= -500
                name = "CT" if ct else ("MR" if self.layout == "msd" else "image")
            found.append(str(name))
        return found

    def class_names(self) -> list[str]:
        if self.scheme is not None:
            return list(self.scheme.names)
        named = self.declared or ["background"]
        return [named[i] if i < len(named) else f"class_{i}" for i in range(self.classes)]

    def intensity_stats(self, channel: int) -> dict[str, float]:
        values = self.foreground[channel]
        if values.size == 0:
            return dict.fromkeys(("mean", "std", "p00_5", "p99_5"), 0.0)
        p_lo, p_hi = np.percentile(values, [0.5, 99.5])
        return {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "p00_5": float(p_lo),
            "p99_5": float(p_hi),
        }


def _ras_spacing(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[tuple, tuple]:
    """Shape and spacing along the RAS axes the data modules reorient to."""
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(0))
    order = [int(np.flatnonzero(ornt[:, 0] == axis)[0]) for axis in range(3)]
    return tuple(int(shape[i]) for i in order), tuple(round(float(zooms[i]), 5) for i in order)


def find_cases(root: Path) -> tuple[str, dict, dict[str, tuple[Path, Path]]]:
    """The layout, ``dataset.json`` (or ``{}``) and ``{case: (image, label)}``.

    Raises:
        FileNotFoundError, ValueError: no known layout, no images, images without labels.
    """
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    if (root / "images").is_dir():
        from scseg.io.images import IMAGE_SUFFIXES

        images = {
            p.stem: p
            for p in sorted((root / "images").iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES
        }
        if not images:
            raise ValueError(f"{root / 'images'}: holds no images (.png, .jpg, .tif, ...)")
        masks = root / "masks"
        missing = [c for c in images if not (masks / f"{c}.png").is_file()]
        if missing:
            raise ValueError(
                f"{masks}: no mask <case>.png for {len(missing)} of {len(images)} "
                f"image(s): {', '.join(missing[:5])}"
            )
        return "folder2d", {}, {c: (p, masks / f"{c}.png") for c, p in images.items()}
    if not (root / "imagesTr").is_dir() and not (root / "dataset.json").is_file():
        raise FileNotFoundError(
            f"{root}: neither images/ + masks/ (2D) nor imagesTr/ + labelsTr/ (3D, MSD layout)"
        )
    from scseg.data.layouts import image_files, read_dataset

    meta, pairs = read_dataset(root)
    if not pairs:
        raise ValueError(f"{root}: no cases")
    return "msd", meta, {c: (_one_or_all(image_files(p)), Path(p["label"]))
                         for c, p in pairs.items()}  # fmt: skip


def _one_or_all(files: list[Path]) -> Path | list[Path]:
    """A case's image: its file, or its channel files (read as one volume)."""
    return files[0] if len(files) == 1 else files


def fingerprint(root: str | Path, seed: int = 0) -> Fingerprint:
    """Reads and checks every case of a 2D folder or an MSD-layout folder.

    Raises:
        DataValidationError: listing every bad case (unreadable, image and label of
            different shape or geometry, NaN/Inf, negative labels, channels differing).
        FileNotFoundError, ValueError: for a folder that holds no dataset.
    """
    root = Path(root)
    layout, meta, pairs = find_cases(root)
    scheme = label_scheme(meta, str(root / "dataset.json")) if layout == "msd" else None
    ignore = scheme.ignore if scheme else None
    masks = bool(scheme and scheme.masks)
    rng = np.random.default_rng(seed)
    cases: dict[str, Case] = {}
    samples: dict[str, list[np.ndarray]] = {}
    lowest: dict[str, list[float]] = {}

    def load(report: Report, case: str, image_path: Path, label_path: Path) -> None:
        if layout == "msd":
            image, label, shape, spacing = _read_volume_pair(report, case, image_path, label_path)
        else:
            image, label, shape, spacing = _read_image_pair(report, case, image_path, label_path)
        if image is None:
            return
        check_intensities(report, case, image)
        if masks and (label.ndim != 4 or label.shape[3] != scheme.channels):
            report.add(case, f"label shape {label.shape}: region_masks needs one mask per region")
            return
        values, counts = np.unique(label, return_counts=True)
        if values.size and values.min() < 0:
            report.add(case, f"negative label value {int(values.min())}")
            return
        if masks:  # counts: voxels per region, as region index + 1
            values, counts = np.arange(1, label.shape[3] + 1), (label > 0).sum((0, 1, 2))
            values, counts = np.append(values, 0), np.append(counts, (~label.any(3)).sum())
        mask = label.any(3) if masks else (label > 0) & (label != ignore)
        channels = image.shape[-1]
        picks = []
        for channel in range(channels):
            voxels = image[..., channel][mask]
            if voxels.size > SAMPLES_PER_CASE:
                voxels = rng.choice(voxels, SAMPLES_PER_CASE, replace=False)
            picks.append(voxels.astype(np.float64))
        samples[case] = picks
        lowest[case] = [float(image[..., c].min()) for c in range(channels)]
        counts = {int(v): int(n) for v, n in zip(values, counts, strict=True)}
        cases[case] = Case(case, image_path, label_path, shape, spacing, channels, counts)

    names = sorted(pairs)
    validate_pairs(root, {"train": names, "val": []}, lambda c: pairs[c], load)
    found = [cases[c] for c in names]
    if len({c.channels for c in found}) > 1:
        report = Report(root)
        first = found[0].channels
        for c in found:
            if c.channels != first:
                report.add(c.name, f"{c.channels} channel(s), {found[0].name} has {first}")
        report.raise_if_any()
    channels = found[0].channels
    return Fingerprint(
        root,
        layout,
        found,
        meta,
        [np.concatenate([samples[c][ch] for c in names]) for ch in range(channels)],
        [min(lowest[c][ch] for c in names) for ch in range(channels)],
    )


def _read_volume_pair(report: Report, case: str, image_path: Path, label_path: Path):
    from scseg.io.volumes import read_volume

    image, image_affine = read_volume(image_path)
    label, label_affine = read_volume(label_path)
    image, label = np.asarray(image), np.asarray(label)
    if not check_volume_pair(report, case, image, image_affine, label, label_affine):
        return None, None, None, None
    if image.ndim == 3:
        image = image[..., None]
    shape, spacing = _ras_spacing(image_affine, image.shape[:3])
    return image, label, shape, spacing


def _read_image_pair(report: Report, case: str, image_path: Path, mask_path: Path):
    from scseg.io.images import read_image, read_mask

    image, mask = read_image(image_path), read_mask(mask_path)
    if not check_image_mask(report, case, image, mask):
        return None, None, None, None
    return image, mask, tuple(int(s) for s in mask.shape), (1.0, 1.0)
