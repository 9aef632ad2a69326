"""Direction cosines as the grid computation needs them: orthonormal to the last bit.

MONAI's ``Spacing`` aligns its output grid to the input's first corner only where its
test (``compute_shape_offset``: every corner at or beyond the first, to 1e-8) holds, and
otherwise centres it, half an output voxel away. Direction cosines that are orthonormal
only to 6 decimals (as many scanners and converters write them in DICOM) or to float32
(NIfTI's sform) flip that test on a 1e-7 change of the affine, so one scan in two formats
was resampled to grids half a voxel apart and got different labels. Snapping the
directions to the nearest orthonormal matrix (keeping each axis's spacing and the
origin) puts every such input on the corner-aligned grid, a continuous function of its
geometry.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.transforms import MapTransform

# rounding of stored cosines, not a real shear (a gantry tilt of 0.1 degrees is 1.7e-3)
SNAP_TOLERANCE = 1e-4


def orthonormal_affine(affine: np.ndarray | torch.Tensor) -> np.ndarray:
    """``affine`` with its direction cosines replaced by the nearest orthonormal ones
    (polar decomposition), where they differ by at most :data:`SNAP_TOLERANCE`; the
    column lengths (spacings) and the origin are kept. A real shear is left alone."""
    out = np.array(affine, dtype=np.float64)
    d = out.shape[0] - 1
    spacing = np.linalg.norm(out[:d, :d], axis=0)
    if np.any(spacing == 0):
        return out
    directions = out[:d, :d] / spacing
    u, _, vt = np.linalg.svd(directions)
    nearest = u @ vt
    if np.abs(nearest - directions).max() <= SNAP_TOLERANCE:
        out[:d, :d] = nearest * spacing
    return out


class OrthonormalAffined(MapTransform):
    """Snaps the affine of each MetaTensor under ``keys`` (:func:`orthonormal_affine`);
    not recorded as an operation: the change is below what the files store."""

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            affine = d[key].affine
            snapped = orthonormal_affine(affine.cpu().numpy())
            d[key].affine = torch.as_tensor(snapped, dtype=affine.dtype)
        return d
