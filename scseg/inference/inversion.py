"""Network outputs at the training grid mapped back onto the input's grid by MONAI's
inversion of the preprocessing, a few channels at a time: for the plain, region and
atlas-prior paths of 3D prediction alike."""

from __future__ import annotations

import numpy as np
import torch
from monai import transforms as T
from monai.data import MetaTensor

# classes x input voxels resampled at a time (float32: 64 MiB, two classes of a 1 mm brain),
# so the inversion's memory does not grow with the number of classes
CLASS_CHUNK_ELEMENTS = 1 << 24


def inverted_chunks(pre: T.Compose, image: MetaTensor, probs: torch.Tensor, shape):
    """``(start, chunk)``: channels ``start..`` of ``probs`` ``(C, *preprocessed)`` mapped
    back to the input grid (MONAI ``Invertd``, float32 ``(k, *input)``), a few channels at
    a time so that memory does not grow with the number of channels. Resampling is per
    channel, so each chunk equals that part of inverting all channels at once."""
    step = max(1, min(probs.shape[0], CLASS_CHUNK_ELEMENTS // max(1, int(np.prod(shape)))))
    invert = T.Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False)
    for start in range(0, probs.shape[0], step):
        part = MetaTensor(probs[start : start + step], meta=dict(image.meta))
        chunk = invert({"image": image, "pred": part})["pred"]
        yield start, (chunk.as_tensor() if isinstance(chunk, MetaTensor) else chunk).float()
