"""Figures of captured attention: sSE maps over the image, cSE weights per block, and for
volumes the maps in three planes."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # figures are written to files; no display is needed
import matplotlib.pyplot as plt
import numpy as np
import torch

from scseg.attention_maps import AttentionMaps


def _np(t: torch.Tensor | np.ndarray) -> np.ndarray:
    return t.detach().float().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _present(maps: Sequence) -> list[int]:
    return [i for i, m in enumerate(maps) if m is not None]


def plot_sse_grid(
    image: torch.Tensor | np.ndarray,
    maps: AttentionMaps,
    target: torch.Tensor | np.ndarray | None = None,
    prediction: torch.Tensor | np.ndarray | None = None,
    index: int = 0,
) -> plt.Figure:
    """Image, ground truth, prediction, then each block's sSE map as a heat-map overlay.

    Args:
        image: ``(B, C, H, W)`` input; channel 0 is shown.
        maps: from :func:`scseg.attention_maps.capture` with ``upsample=True``.
        target, prediction: ``(B, H, W)`` class maps (optional).
        index: which sample of the batch.
    """
    base = _np(image)[index, 0]
    panels: list[tuple[str, np.ndarray, np.ndarray | None]] = [("image", base, None)]
    if target is not None:
        panels.append(("ground truth", base, _np(target)[index].squeeze()))
    if prediction is not None:
        panels.append(("prediction", base, _np(prediction)[index].squeeze()))
    blocks = _present(maps.sse)
    fig, axes = plt.subplots(
        1, len(panels) + len(blocks), figsize=(3 * (len(panels) + len(blocks)), 3.2)
    )
    axes = np.atleast_1d(axes)
    for ax, (title, img, overlay) in zip(axes, panels, strict=False):
        ax.imshow(img, cmap="gray")
        if overlay is not None:
            ax.imshow(np.ma.masked_equal(overlay, 0), cmap="tab10", alpha=0.5, vmin=0, vmax=9)
        ax.set_title(title)
    for ax, i in zip(axes[len(panels) :], blocks, strict=True):
        heat = _np(maps.sse[i])[index, 0]
        ax.imshow(base, cmap="gray")
        shown = ax.imshow(heat, cmap="inferno", alpha=0.6, vmin=0, vmax=1)
        ax.set_title(f"sSE, decoder block {i}")
    for ax in axes:
        ax.axis("off")
    if blocks:
        fig.colorbar(shown, ax=list(axes), shrink=0.7, label="sSE gate")
    return fig


def plot_cse_weights(maps: AttentionMaps, index: int = 0) -> plt.Figure:
    """cSE weights of each block as a heat strip (channels along x)."""
    blocks = _present(maps.cse)
    if not blocks:
        raise ValueError("no cSE weights were captured (attention 'none' or 'sse')")
    fig, axes = plt.subplots(len(blocks), 1, figsize=(8, 0.9 * len(blocks) + 0.8), squeeze=False)
    for ax, i in zip(axes[:, 0], blocks, strict=True):
        weights = _np(maps.cse[i])[index][None]
        shown = ax.imshow(weights, aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_yticks([])
        ax.set_ylabel(f"block {i}", rotation=0, ha="right", va="center")
    axes[-1, 0].set_xlabel("channel")
    fig.colorbar(shown, ax=list(axes[:, 0]), label="cSE weight")
    fig.suptitle("cSE channel weights per decoder block")
    return fig


def plot_sse_planes(
    volume: torch.Tensor | np.ndarray,
    maps: AttentionMaps,
    slices: Sequence[int] | None = None,
    index: int = 0,
) -> plt.Figure:
    """For a 3D input: each block's sSE map in axial, coronal and sagittal planes.

    Args:
        volume: ``(B, C, X, Y, Z)`` input (RAS order: X left-right, Y back-front, Z up).
        maps: from :func:`capture` with ``upsample=True``.
        slices: ``(x, y, z)`` indices of the planes (default: the centre).
    """
    vol = _np(volume)[index, 0]
    x, y, z = slices or [s // 2 for s in vol.shape]
    planes = {
        "axial": lambda a: a[:, :, z].T,
        "coronal": lambda a: a[:, y, :].T,
        "sagittal": lambda a: a[x, :, :].T,
    }
    blocks = _present(maps.sse)
    rows = 1 + len(blocks)
    fig, axes = plt.subplots(rows, 3, figsize=(9, 3 * rows), squeeze=False)
    for col, (name, cut) in enumerate(planes.items()):
        axes[0, col].imshow(cut(vol), cmap="gray", origin="lower")
        axes[0, col].set_title(name)
        for row, i in enumerate(blocks, start=1):
            axes[row, col].imshow(cut(vol), cmap="gray", origin="lower")
            axes[row, col].imshow(
                cut(_np(maps.sse[i])[index, 0]), cmap="inferno", alpha=0.6, vmin=0, vmax=1,
                origin="lower",
            )  # fmt: skip
            if col == 0:
                axes[row, col].set_ylabel(f"sSE block {i}")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
