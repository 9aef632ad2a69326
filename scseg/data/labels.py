"""What the values of a dataset's label maps mean: classes, "not annotated", regions.

Read from ``dataset.json`` as nnU-Net v2 writes it (``"labels": {"background": 0, ...}``):

* ``"ignore": N`` marks voxels that nobody annotated (sparse or scribble labels). As in
  nnU-Net v2 it must be the highest value; the classes are ``0..N-1``. Those voxels count
  for nothing in the loss, the metrics and ``scseg evaluate``.
* A label whose value is a list (``"whole_tumour": [1, 2, 3]``) makes the dataset
  region-based: each such label is one output channel, the union of those values, with a
  sigmoid, so regions may overlap. ``"regions_class_order"`` gives, per region, the value
  written where it is predicted when one label map is written (later regions overwrite
  earlier ones, as in nnU-Net).
* ``"region_masks": ["left", "cortex", ...]`` (scseg's own key) says that each label file
  holds one binary mask per region, a 4D file with the regions in that order.

Datasets in the MSD layout (``"labels": {"0": "background", ...}``) have plain classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.transforms import MapTransform

MAX_ORDER_VALUE = 32767  # label maps of region orders are int16 above 255


class LabelSchemeError(ValueError):
    """A ``dataset.json`` whose labels cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class LabelScheme:
    """``names``: one per output channel (classes with background first, or regions);
    ``ignore``: the "not annotated" value; ``regions``: per region, the label values it
    unites (``None`` for plain classes); ``order``: ``regions_class_order``; ``masks``:
    label files hold one mask per region."""

    names: tuple[str, ...]
    ignore: int | None = None
    regions: tuple[tuple[int, ...], ...] | None = None
    order: tuple[int, ...] | None = None
    masks: bool = False

    @property
    def multilabel(self) -> bool:
        return self.regions is not None or self.masks

    @property
    def channels(self) -> int:
        return len(self.names)

    def info(self) -> dict:
        """Plain values for checkpoints (what inference needs to write regions)."""
        if not self.multilabel:
            return {}
        return {
            "regions": [list(r) for r in self.regions] if self.regions is not None else None,
            "region_order": list(self.order) if self.order is not None else None,
        }


def label_scheme(meta: dict, source: str) -> LabelScheme | None:
    """The scheme of a ``dataset.json`` (``source`` names it in errors); ``None`` where it
    has no nnU-Net v2 style labels (plain classes, as the caller already reads them).

    Raises:
        LabelSchemeError: an ignore value that is not the highest or collides with a
            class, a region that is not a list of positive whole numbers, a region order
            of the wrong length, or masks and value regions both.
    """
    masks = meta.get("region_masks")
    labels = meta.get("labels") or {}
    if masks is not None:
        if not isinstance(masks, list) or not masks or not all(isinstance(m, str) for m in masks):
            raise LabelSchemeError(f"{source}: region_masks must be a list of region names")
        if "ignore" in labels:
            raise LabelSchemeError(f"{source}: labels.ignore cannot be used with region_masks")
        return LabelScheme(tuple(masks), masks=True)
    if not isinstance(labels, dict) or not labels:
        return None
    values = {k: v for k, v in labels.items()}
    if all(isinstance(v, str) for v in values.values()):
        _check_msd_labels(values, source)
        return None  # MSD style {"0": "background"}
    for name, value in values.items():
        if not (_is_int(value) or isinstance(value, list)):
            raise LabelSchemeError(
                f"{source}: labels.{name} = {value!r}: give a whole number (nnU-Net v2: "
                '{"background": 0, ...}) or a list of them (a region)'
            )
    ignore = values.pop("ignore", None)
    regional = any(isinstance(v, list) for v in values.values())
    if ignore is not None:
        _check_ignore(values, ignore, source, regional)
    if regional:
        return _regions(meta, values, source)
    by_value = {int(v): k for k, v in values.items()}
    if sorted(by_value) != list(range(len(by_value))):
        raise LabelSchemeError(
            f"{source}: labels must number the classes 0..N-1, got {sorted(by_value)}"
        )
    return LabelScheme(tuple(by_value[i] for i in range(len(by_value))), ignore)


def _check_msd_labels(labels: dict, source: str) -> None:
    """MSD's ``{"0": "background", "1": ...}``: every key a label value, 0..N-1."""
    for key in labels:
        if not str(key).isdigit():
            raise LabelSchemeError(
                f"{source}: labels key {key!r} is not a label value: MSD writes "
                '{"0": "background", ...}, nnU-Net v2 {"background": 0, ...}'
            )
    if sorted(int(k) for k in labels) != list(range(len(labels))):
        raise LabelSchemeError(
            f"{source}: labels must number the classes 0..N-1, got {sorted(map(int, labels))}"
        )


def declared_classes(meta: dict, source: str) -> list[str] | None:
    """The class names ``dataset.json`` gives, by value ``0..N-1`` (MSD or nnU-Net v2
    style), or ``None`` where it names none or labels regions.

    Raises:
        LabelSchemeError: labels that are neither style, naming the file and the key.
    """
    scheme = label_scheme(meta, source)
    if scheme is not None:
        return None if scheme.multilabel else list(scheme.names)
    labels = meta.get("labels")
    if not isinstance(labels, dict) or not labels:
        return None
    return [str(labels[str(i)]) for i in range(len(labels))]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_ignore(values: dict, ignore, source: str, regional: bool) -> None:
    if not _is_int(ignore) or ignore < 1:
        raise LabelSchemeError(f"{source}: labels.ignore must be a positive whole number")
    if regional:
        raise LabelSchemeError(
            f"{source}: labels.ignore with region labels is not supported; use one or the other"
        )
    for name, value in values.items():
        if value == ignore:
            raise LabelSchemeError(
                f"{source}: labels.ignore = {ignore} collides with class {name!r} ({value})"
            )
    if ignore < max(values.values()):
        raise LabelSchemeError(
            f"{source}: labels.ignore = {ignore} must be the highest label value "
            f"(above {max(values.values())}), as nnU-Net v2 requires"
        )


def _regions(meta: dict, values: dict, source: str) -> LabelScheme:
    names, regions = [], []
    for name, value in values.items():
        members = value if isinstance(value, list) else [value]
        if not members or not all(_is_int(m) and m >= 0 for m in members):
            raise LabelSchemeError(
                f"{source}: labels.{name} must list label values (whole numbers), got {value}"
            )
        if members == [0]:
            continue  # background: every region's complement
        if 0 in members:
            raise LabelSchemeError(f"{source}: labels.{name} includes background (0)")
        names.append(name)
        regions.append(tuple(sorted(members)))
    order = meta.get("regions_class_order")
    if order is not None:
        if not isinstance(order, list) or len(order) != len(regions):
            raise LabelSchemeError(
                f"{source}: regions_class_order must give one value per region "
                f"({len(regions)}), got {order}"
            )
        if not all(_is_int(v) and 1 <= v <= MAX_ORDER_VALUE for v in order):
            raise LabelSchemeError(
                f"{source}: regions_class_order must hold label values 1..{MAX_ORDER_VALUE} "
                f"(one per region, written where it is predicted), got {order}"
            )
        order = tuple(order)
    return LabelScheme(tuple(names), regions=tuple(regions), order=order)


def check_region_values(scheme: LabelScheme, present: set[int], source: str) -> None:
    """Raises :class:`LabelSchemeError` where a region names a label value no label map
    holds (``present``: the values found). Values in no region are background for every
    region (a parcellation's regions need not cover every structure)."""
    if scheme.regions is None:
        return
    for name, members in zip(scheme.names, scheme.regions, strict=True):
        if missing := sorted(set(members) - present):
            raise LabelSchemeError(
                f"{source}: labels.{name} names label value(s) {missing} that no label map holds"
            )


def region_masks(labels: torch.Tensor, regions: Sequence[Sequence[int]]) -> torch.Tensor:
    """One binary mask per region from a label map ``(1, *spatial)`` -> ``(R, *spatial)``
    (uint8): voxel in region ``r`` when its value is one of ``regions[r]``."""
    values = labels[0] if labels.shape[0] == 1 else labels
    out = torch.zeros((len(regions), *values.shape), dtype=torch.uint8, device=values.device)
    for r, members in enumerate(regions):
        for value in members:
            out[r] |= values == value
    return out


def regions_to_label_map(masks: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """One label map from region masks ``(R, *spatial)``: region ``r`` writes ``order[r]``
    where predicted, later regions over earlier ones (nnU-Net's ``regions_class_order``)."""
    out = np.zeros(masks.shape[1:], dtype=np.uint8 if max(order) < 256 else np.int16)
    for mask, value in zip(masks, order, strict=True):
        out[mask.astype(bool)] = value
    return out


def labelmap_names(
    names: Sequence[str],
    order: Sequence[int],
    regions: Sequence[Sequence[int]] | None = None,
) -> list[str]:
    """The name of each value of :func:`regions_to_label_map`'s map, ``0..max(order)``.

    Value ``order[r]`` is where region ``r`` is predicted and no later region is, so it is
    named for region ``r`` without the later regions that may overlap it (with label-value
    ``regions``: those that share a value with it; without: every later one). With
    whole = [1, 2] and core = [2], value 1 is "whole without core", value 2 "core". Values
    no region writes are named ``unused_<v>``; 0 is background.
    """
    table = ["background"] + [f"unused_{v}" for v in range(1, max(order) + 1)]
    for r, (name, value) in enumerate(zip(names, order, strict=True)):
        later = range(r + 1, len(names))
        if regions is not None:
            later = [k for k in later if set(regions[r]) & set(regions[k])]
        table[value] = (
            " without ".join([name, " or ".join(names[k] for k in later)]) if later else name
        )
    return table


class RegionMasksd(MapTransform):
    """The label map of ``keys`` as one mask per region (see :func:`region_masks`)."""

    def __init__(self, keys, regions: Sequence[Sequence[int]]) -> None:
        super().__init__(keys)
        self.regions = [list(r) for r in regions]

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = region_masks(torch.as_tensor(d[key]), self.regions)
        return d


class ShiftAnnotationd(MapTransform):
    """Encodes sparse labels so that 0 means "not annotated" (``ignore`` -> 0, class
    ``c`` -> ``c + 1``) or, with ``decode``, back. Between the two, every spatial
    transform's zero fill (padding, turned corners) is "not annotated" rather than
    background, and nearest-neighbour resampling keeps the ignore value as itself; crops
    that look for labels above 0 find annotated voxels."""

    def __init__(self, keys, ignore: int, decode: bool = False) -> None:
        super().__init__(keys)
        self.ignore, self.decode = ignore, decode

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            label = d[key]
            if self.decode:
                d[key] = torch.where(label == 0, self.ignore, label - 1).to(label.dtype)
            else:
                d[key] = torch.where(label == self.ignore, 0, label + 1).to(label.dtype)
        return d


def sparse_labels(ignore: int | None, transforms: list) -> list:
    """``transforms`` between the encoding and decoding of :class:`ShiftAnnotationd` when
    the labels are sparse (``ignore`` given), else as they are."""
    if ignore is None:
        return transforms
    return [
        ShiftAnnotationd("label", ignore),
        *transforms,
        ShiftAnnotationd("label", ignore, decode=True),
    ]
