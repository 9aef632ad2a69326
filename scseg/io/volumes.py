"""Volume files: a NIfTI or NRRD file read as stored (array and RAS affine), and the names
of volume files, for the data modules, the planner, evaluation, inference and the atlas."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scseg.io.nrrd import NRRD_SUFFIXES, nrrd_affine

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr")
# nnU-Net v2's image files: <case>_<channel as 4 digits><file ending>
CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


@dataclass(frozen=True)
class ChannelFiles:
    """One scan whose channels are files of their own, named as nnU-Net v2 names them
    (``<name>_0000.nii.gz``, ``<name>_0001.nii.gz``, ...); outputs take ``name``."""

    name: str
    files: tuple[Path, ...]

    def __str__(self) -> str:
        first = self.files[0]
        more = f" (+{len(self.files) - 1} channel file(s))" if len(self.files) > 1 else ""
        return f"{first}{more}"


def group_channel_files(files: Sequence[Path], channels: int) -> list[Path | ChannelFiles]:
    """``files`` as nnU-Net v2 cases where every one is named ``<case>_<XXXX>.<suffix>``
    and each case has channels ``0000`` to ``channels - 1`` exactly; else as they are."""
    found: dict[str, dict[int, Path]] = {}
    for file in files:
        match = CHANNEL_FILE.match(case_name(file))
        if match is None:
            return list(files)
        found.setdefault(match["case"], {})[int(match["channel"])] = file
    if not found or any(sorted(c) != list(range(channels)) for c in found.values()):
        return list(files)
    return [
        ChannelFiles(case, tuple(by_channel[c] for c in range(channels)))
        for case, by_channel in sorted(found.items())
    ]


def case_name(path: str | Path) -> str:
    """The file name without its volume suffix (``.nii.gz``, ``.nii``, ``.nrrd``, ``.nhdr``,
    any case) or, for other files, without its last suffix."""
    name = Path(path).name
    for suffix in VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def read_volume(path: Path | Sequence[Path]):
    """``(array, RAS affine)`` of a NIfTI or NRRD file, as stored; of a list of files (one
    per channel, as nnU-Net v2 stores them), the channels stacked along a last axis.

    Raises:
        ValueError: channel files of different shapes or geometry, naming the file.
    """
    import nibabel as nib
    import numpy as np

    if isinstance(path, (list, tuple)):
        first, affine = read_volume(path[0])
        arrays = [np.asarray(first)]
        for other in path[1:]:
            array, other_affine = read_volume(other)
            if array.shape != first.shape or not np.allclose(other_affine, affine, atol=1e-4):
                raise ValueError(
                    f"{other}: channel file's shape or geometry differs from {path[0]}'s"
                )
            arrays.append(np.asarray(array))
        return np.stack(arrays, axis=-1), affine

    if str(path).lower().endswith(NRRD_SUFFIXES):
        import nrrd

        data, header = nrrd.read(str(path))
        return data, nrrd_affine(header)
    image = nib.load(path)
    return np.asanyarray(image.dataobj), image.affine


def is_volume_file(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(VOLUME_SUFFIXES)
