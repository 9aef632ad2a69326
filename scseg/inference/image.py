"""2D prediction: an image in, a class-index map at the image's own size out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from scseg.data.intensity import NonFiniteError, finite_intensities
from scseg.inference.argmax import label_dtype
from scseg.inference.checkpoint import LoadedModel
from scseg.inference.volume import InputError
from scseg.io.images import IMAGE_SUFFIXES, normalize, read_image
from scseg.models.slabs import pad_predict

# Distinct colours for overlays; class 0 (background) is left uncoloured.
PALETTE = np.array(
    [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
     [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]],
    dtype=np.uint8,
)  # fmt: skip


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def image_tensor(model: LoadedModel, path: str | Path, nonfinite: str = "refuse") -> torch.Tensor:
    """The image as the model saw images in training: ``(1, C, H, W)``, normalised.

    Args:
        nonfinite: NaN/Inf intensities ``"refuse"``d or ``"fill"``ed
            (:func:`scseg.data.intensity.finite_intensities`).

    Raises:
        InputError: unreadable file, a 3D model, the wrong channel count, or NaN/Inf
            intensities refused.
    """
    path = Path(path)
    if model.spatial_dims != 2:
        raise InputError(f"{path}: the checkpoint is a {model.spatial_dims}D model, not 2D")
    try:
        image = read_image(path)
    except ValueError as err:
        raise InputError(str(err)) from None
    if image.shape[-1] != model.in_channels:
        raise InputError(
            f"{path}: has {image.shape[-1]} channel(s), the model takes {model.in_channels}"
        )
    try:
        image = finite_intensities(image, str(path), nonfinite, channel_axis=-1)
    except NonFiniteError as err:
        raise InputError(str(err)) from None
    x = normalize(image, model.data_info.get("normalization", "percentile"))
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def predict_image(
    model: LoadedModel, path: str | Path, tta: bool = False, nonfinite: str = "refuse"
) -> tuple[np.ndarray, np.ndarray]:
    """Segments one image with the training normalisation.

    Args:
        model: from :func:`scseg.inference.load_model`, 2D.
        path: PNG, JPEG, TIFF or BMP.
        tta: average over the mirrors used in training (up to 4x the time).
        nonfinite: NaN/Inf intensities ``"refuse"``d or ``"fill"``ed and reported.

    Returns:
        ``(labels (H, W) uint8/int16, probabilities (C, H, W) float32)``.

    Raises:
        InputError: unreadable file or wrong channel count.
    """
    x = image_tensor(model, path, nonfinite)
    # centred in the training patch where smaller, as training's PadIfNeeded put it
    patch = model.data_info.get("patch_size")
    probs = model.probabilities(x, lambda xi: pad_predict(model.net, xi, patch), tta)[0].numpy()
    labels = probs.argmax(0).astype(label_dtype(model.classes))
    return labels, probs


def overlay(path: str | Path, labels: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The image (rescaled to 8-bit RGB) with each non-background class tinted."""
    image = read_image(path)
    lo, hi = np.percentile(image, [1, 99])
    grey = np.clip((image - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    rgb = np.repeat(grey, 3, -1) if grey.shape[-1] == 1 else grey[..., :3]
    colours = PALETTE[labels % len(PALETTE)]
    tinted = (1 - alpha) * rgb + alpha * colours
    return np.where(labels[..., None] > 0, tinted, rgb).astype(np.uint8)
