"""Reading 2D images and masks, and the intensity normalisation shared by training and
prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NORMALIZATIONS = ("percentile", "imagenet", "none")
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def read_image(path: str | Path) -> np.ndarray:
    """Reads an image as ``(H, W, C)`` float32, alpha dropped.

    Raises:
        ValueError: if the file cannot be read or is not a 2D image; names the file.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            array = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as im:
                im.load()
                array = np.asarray(im.convert("RGB") if im.mode in ("P", "CMYK", "YCbCr") else im)
    except Exception as err:  # PIL and tifffile raise many types for bad files
        raise ValueError(f"{path}: cannot read image ({type(err).__name__}: {err})") from None
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(f"{path}: expected a 2D image, got an array of shape {array.shape}")
    if array.shape[-1] == 4:
        array = array[..., :3]
    return array.astype(np.float32)


def read_mask(path: str | Path) -> np.ndarray:
    """Reads a class-index mask as ``(H, W)`` int64 (palette PNGs give their indices).

    Raises:
        ValueError: if the file cannot be read or is not single-channel.
    """
    path = Path(path)
    try:
        from PIL import Image

        with Image.open(path) as im:
            array = np.asarray(im)
    except Exception as err:
        raise ValueError(f"{path}: cannot read mask ({type(err).__name__}: {err})") from None
    if array.ndim != 2:
        raise ValueError(f"{path}: a mask must be one channel of class indices, got {array.shape}")
    return array.astype(np.int64)


def to_unit_range(image: np.ndarray, mode: str = "percentile") -> np.ndarray:
    """The first half of :func:`normalize`: intensities to [0, 1] (``"none"``: unchanged).

    Photometric augmentation runs between the two halves: albumentations clips float
    images to [0, 1], so it must see them in that range, not standardised.
    """
    if mode == "percentile":
        lo, hi = np.percentile(image, [1, 99], axis=(0, 1), keepdims=True)
        return np.clip((image - lo) / np.maximum(hi - lo, 1e-6), 0, 1).astype(np.float32)
    if mode == "imagenet":
        if image.shape[-1] != 3:
            raise ValueError(f"imagenet normalisation needs 3 channels, got {image.shape[-1]}")
        return (image / 255.0).astype(np.float32)
    if mode == "none":
        return image
    raise ValueError(f"unknown normalisation {mode!r}; choose one of: {', '.join(NORMALIZATIONS)}")


def standardize(image: np.ndarray, mode: str = "percentile") -> np.ndarray:
    """The second half of :func:`normalize`: ImageNet mean/std for ``"imagenet"``, else
    unchanged."""
    if mode == "imagenet":
        return ((image - _IMAGENET_MEAN) / _IMAGENET_STD).astype(np.float32)
    return image


def normalize(image: np.ndarray, mode: str = "percentile") -> np.ndarray:
    """Intensity normalisation of an ``(H, W, C)`` image.

    Args:
        mode: ``"percentile"`` (per image and channel, 1st-99th percentile to [0, 1]; for
            microscopy and medical images of any bit depth), ``"imagenet"`` (8-bit RGB
            scaled to [0, 1], then ImageNet mean/std, for pretrained encoders) or ``"none"``.
    """
    return standardize(to_unit_range(image, mode), mode)
