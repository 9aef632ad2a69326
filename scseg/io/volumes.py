"""Volume files: a NIfTI or NRRD file read as stored (array and RAS affine), and the names
of volume files, for the data modules, the planner, evaluation, inference and the atlas."""

from __future__ import annotations

from pathlib import Path

from scseg.io.nrrd import NRRD_SUFFIXES, nrrd_affine

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr")


def case_name(path: str | Path) -> str:
    """The file name without its volume suffix (``.nii.gz``, ``.nii``, ``.nrrd``, ``.nhdr``,
    any case) or, for other files, without its last suffix."""
    name = Path(path).name
    for suffix in VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def read_volume(path: Path):
    """``(array, RAS affine)`` of a NIfTI or NRRD file, as stored."""
    import nibabel as nib
    import numpy as np

    if str(path).lower().endswith(NRRD_SUFFIXES):
        import nrrd

        data, header = nrrd.read(str(path))
        return data, nrrd_affine(header)
    image = nib.load(path)
    return np.asanyarray(image.dataobj), image.affine


def is_volume_file(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(VOLUME_SUFFIXES)
