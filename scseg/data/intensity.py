"""Non-finite intensities (NaN, Inf) in an input: refused by default, or filled and
reported. One NaN voxel makes a z-score NaN everywhere, and a network given NaN predicts
one class for the whole scan, so a prediction would look like a result and be none."""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.transforms import MapTransform

NONFINITE_MODES = ("refuse", "fill")


class NonFiniteError(ValueError):
    """An input holds NaN or Inf intensities; the message names the input."""


class NonFiniteWarning(UserWarning):
    """Non-finite intensities were filled (``nonfinite="fill"``)."""


def finite_intensities(
    image: np.ndarray | torch.Tensor, name: str, mode: str = "refuse", channel_axis: int = 0
) -> np.ndarray | torch.Tensor:
    """``image`` unchanged when every value is finite; otherwise, by ``mode``:
    ``"refuse"`` raises, ``"fill"`` returns a copy with each non-finite value set to the
    lowest finite value of its channel (what the scan holds outside the body, mostly) and
    warns with the count.

    Args:
        image: intensities, channels along ``channel_axis`` (integer types pass as they are).
        name: the file, for messages.

    Raises:
        NonFiniteError: non-finite values and ``mode="refuse"``, or a channel without a
            finite value.
    """
    if mode not in NONFINITE_MODES:
        raise ValueError(f"nonfinite must be one of {NONFINITE_MODES}, got {mode!r}")
    is_tensor = isinstance(image, torch.Tensor)
    if not (image.is_floating_point() if is_tensor else np.issubdtype(image.dtype, np.floating)):
        return image
    finite = torch.isfinite(image) if is_tensor else np.isfinite(image)
    if bool(finite.all()):
        return image
    count = int((~finite).sum())
    if mode == "refuse":
        raise NonFiniteError(
            f"{name}: {count} NaN/Inf intensity value(s); fix the file, or pass "
            "--nonfinite fill to fill them with the lowest finite intensity"
        )
    filled = image.clone() if is_tensor else image.copy()
    axis = channel_axis % image.ndim
    for c in range(image.shape[axis]):
        index = (slice(None),) * axis + (c,)
        ok = finite[index]
        if not bool(ok.any()):
            raise NonFiniteError(f"{name}: channel {c} holds no finite intensity")
        lowest = image[index][ok].min()
        filled[index] = (
            torch.where(ok, image[index], lowest)
            if is_tensor
            else np.where(ok, image[index], lowest)
        )
    warnings.warn(
        f"{name}: {count} NaN/Inf intensity value(s) filled with the lowest finite intensity",
        NonFiniteWarning,
        stacklevel=2,
    )
    return filled


class FiniteIntensityd(MapTransform):
    """:func:`finite_intensities` on channel-first images, as a MONAI dict transform
    (named by the image's ``filename_or_obj``)."""

    def __init__(self, keys: Sequence[Hashable], mode: str = "refuse") -> None:
        super().__init__(keys)
        if mode not in NONFINITE_MODES:
            raise ValueError(f"nonfinite must be one of {NONFINITE_MODES}, got {mode!r}")
        self.mode = mode

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            meta = getattr(d[key], "meta", {})
            d[key] = finite_intensities(d[key], str(meta.get("filename_or_obj", key)), self.mode)
        return d
