"""The configurations that cross-validation compares: planned configs that share one
split with folds, and where each case's image and truth are."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml


class SelectionError(ValueError):
    """Configurations that cannot be cross-validated together; the message names the file."""


@dataclass
class Configuration:
    """One planned config: ``name`` (``3d``, ``2d`` or the config's stem) and what the
    cross-validation needs of it."""

    name: str
    config: Path
    values: dict

    @property
    def data(self) -> dict:
        return (self.values.get("data") or {}).get("init_args") or {}

    @property
    def root(self) -> Path:
        return Path(self.data["root"])

    @property
    def split_file(self) -> Path:
        split = Path(self.data.get("split_file") or "split.json")
        return split if split.is_absolute() else self.root / split

    @property
    def class_names(self) -> list[str] | None:
        return self.data.get("class_names")


def read_configurations(configs: list[Path]) -> list[Configuration]:
    """Reads each config and checks that they can be compared: one dataset, one split
    file with K >= 2 folds, distinct configurations.

    Raises:
        SelectionError: naming the config or split file and the problem.
    """
    found = []
    for path in configs:
        if not path.is_file():
            raise SelectionError(f"{path}: config not found")
        try:
            values = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise SelectionError(f"{path}: not YAML ({str(err).splitlines()[0]})") from None
        data = ((values or {}).get("data") or {}).get("init_args") or {}
        if not isinstance(values, dict) or "root" not in data:
            raise SelectionError(f"{path}: not a planned config (no data.init_args.root)")
        dims = (values.get("model") or {}).get("spatial_dims")
        found.append(Configuration(f"{dims}d" if dims in (2, 3) else path.stem, path, values))
    names = [c.name for c in found]
    if len(set(names)) < len(names):  # e.g. two 3D configs: told apart by their files
        for c in found:
            c.name = c.config.stem
    if len({c.name for c in found}) < len(found):
        raise SelectionError(f"configs {', '.join(map(str, configs))}: two share a name")
    first = found[0]
    for c in found[1:]:
        if c.split_file.resolve() != first.split_file.resolve():
            raise SelectionError(f"{c.config}: splits by {c.split_file}, {first.config} by "
                                 f"{first.split_file}: the folds must be shared")  # fmt: skip
        if c.root.resolve() != first.root.resolve():
            raise SelectionError(f"{c.config}: trains on {c.root}, {first.config} on {first.root}")
    folds(first)  # checked before any work
    return found


def folds(configuration: Configuration) -> list[dict]:
    """The split file's folds, each ``{"train", "val"}``.

    Raises:
        SelectionError: no split file, or one without two or more folds.
    """
    path = configuration.split_file
    if not path.is_file():
        raise SelectionError(f"{path}: split file of {configuration.config} not found")
    try:
        split = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SelectionError(f"{path}: not JSON ({err})") from None
    found = split.get("folds") if isinstance(split, dict) else None
    if not isinstance(found, list) or len(found) < 2:
        raise SelectionError(f"{path}: has no folds to cross-validate on: plan with --folds K "
                             "(nnU-Net: 5)")  # fmt: skip
    return found


def case_files(root: Path) -> tuple[dict, dict[str, tuple[object, Path]]]:
    """``dataset.json`` (or ``{}``) and ``{case: (image source, truth file)}`` of the
    dataset folder, the image source as ``scseg predict`` takes it."""
    from scseg.io.volumes import ChannelFiles
    from scseg.planning.fingerprint import find_cases

    _, meta, pairs = find_cases(root)
    found = {}
    for case, (image, label) in pairs.items():
        source = ChannelFiles(case, tuple(image)) if isinstance(image, list) else image
        found[case] = (source, label)
    return meta, found
