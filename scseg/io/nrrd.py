"""NRRD geometry: the header's world space, whichever way it is spelled, to RAS.

The NRRD spec allows ``space: LPS`` as well as ``space: left-posterior-superior``; MONAI's
``NrrdReader`` converts only the long name and the absent field from LPS, and so reads an
``LPS`` file as if it were RAS (mirrored in x and y). Everything here reads NRRD geometry
through :func:`nrrd_affine`, and MONAI pipelines through :class:`RASNrrdReader`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import numpy as np

# sign of each world axis relative to RAS, by the spec's names and abbreviations
_SPACES = {
    "right-anterior-superior": (1.0, 1.0, 1.0),
    "left-anterior-superior": (-1.0, 1.0, 1.0),
    "left-posterior-superior": (-1.0, -1.0, 1.0),
}
_ABBREVIATIONS = {"ras": "right-anterior-superior", "las": "left-anterior-superior",
                  "lps": "left-posterior-superior"}  # fmt: skip
NRRD_SUFFIXES = (".nrrd", ".nhdr")


def to_ras(space: str | None) -> np.ndarray:
    """The 4x4 diagonal that takes the NRRD ``space`` (LPS when absent, as the spec says
    and MONAI assumes) to RAS.

    Raises:
        ValueError: for a space that is not RAS, LAS or LPS (e.g. ``scanner-xyz``).
    """
    name = str(space or "left-posterior-superior").strip().lower()
    name = _ABBREVIATIONS.get(name, name)
    if name not in _SPACES:
        known = ", ".join(f"{k} ({a.upper()})" for a, k in _ABBREVIATIONS.items())
        raise ValueError(f"unsupported NRRD space {space!r}; supported: {known}")
    return np.diag([*_SPACES[name], 1.0])


def nrrd_affine(header: Mapping) -> np.ndarray:
    """The RAS voxel-to-world affine of an NRRD header (as NIfTI stores it).

    Raises:
        ValueError: for a header without 3D space directions, or an unsupported space.
    """
    directions = np.asarray(header.get("space directions"), dtype=float)
    if directions.shape != (3, 3):
        raise ValueError(f"expected 3x3 space directions, got {directions.shape}")
    affine = np.eye(4)
    affine[:3, :3] = directions.T  # row i of 'space directions' is axis i's step vector
    affine[:3, 3] = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
    return to_ras(header.get("space")) @ affine


@cache
def _reader_class():
    from monai.data import NrrdReader
    from monai.data.utils import is_supported_format
    from monai.utils import MetaKeys, SpaceKeys

    class RASNrrdReader(NrrdReader):
        """MONAI's ``NrrdReader`` with every spelling of the space taken to RAS, unknown
        spaces refused, and detached-header ``.nhdr`` files accepted."""

        def verify_suffix(self, filename) -> bool:
            return is_supported_format(filename, [s.lstrip(".") for s in NRRD_SUFFIXES])

        def _switch_lps_ras(self, header: dict) -> dict:
            header[MetaKeys.ORIGINAL_AFFINE] = to_ras(header.get("space")) @ header[
                MetaKeys.ORIGINAL_AFFINE]  # fmt: skip
            header[MetaKeys.SPACE] = SpaceKeys.RAS
            return header

    return RASNrrdReader


def ras_nrrd_reader():
    """A MONAI image reader for NRRD files with their geometry in RAS (see module doc)."""
    return _reader_class()()
