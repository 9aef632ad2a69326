"""Class scores that arrive a few classes at a time (mapped back to an input grid chunk by
chunk, so that memory does not grow with the number of classes), reduced to a label map."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


def running_argmax(
    chunks: Iterable[tuple[int, torch.Tensor]],
    shape: tuple[int, ...],
    classes: int,
    logsumexp: bool = False,
) -> tuple[np.ndarray, torch.Tensor | None]:
    """The argmax over classes of scores that arrive ``(start, chunk)``, ``chunk``
    ``(k, *shape)`` for classes ``start..``, in class order, kept as a running maximum: a
    later class wins only where strictly larger, so ties go to the lower class as
    ``argmax`` over all classes gives them. Two ``shape``-sized volumes besides the chunk.

    Returns:
        the label map (int16, or int32 past 32767 classes) and, with ``logsumexp``, the log
        of the sum of the scores' exponentials (a running sum rescaled to each new
        maximum). A chunk not on ``shape`` stops it: ``(empty array of the chunk's shape,
        None)``, for the caller to report.
    """
    best = labels = total = None
    for start, chunk in chunks:
        if tuple(chunk.shape[1:]) != shape:
            return np.empty(tuple(chunk.shape[1:])), None
        # class by class: argmax over a short leading axis is slow on the CPU (0.5 s per
        # two classes of a 1 mm brain), a comparison and an in-place maximum are not
        for offset, values in enumerate(chunk):
            if best is None:  # the running values keep the chunk's memory layout
                best = values.clone()
                kind = torch.int16 if classes < 1 << 15 else torch.int32
                labels = torch.zeros_like(values, dtype=kind)
                total = torch.ones_like(values) if logsumexp else None
                continue
            labels.masked_fill_(torch.gt(values, best), start + offset)
            if logsumexp:
                new = torch.maximum(best, values)
                total.mul_(torch.exp(best - new)).add_(torch.exp(values - new))
                best = new
            else:
                torch.maximum(best, values, out=best)
        del chunk
    return labels.numpy(), total.log_().add_(best) if logsumexp else None


def label_dtype(classes: int) -> type:
    """The dtype of a label map of ``classes`` classes: uint8 up to 255, else int16."""
    return np.uint8 if classes <= 255 else np.int16
