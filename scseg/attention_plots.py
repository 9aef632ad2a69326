"""Figures of captured attention: sSE maps over the image, cSE weights per block, and for
volumes the maps in three planes. Importing this module leaves matplotlib's backend alone,
so the figures show inline in notebooks; ``scseg attention`` picks Agg for itself."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch

from scseg.attention_maps import AttentionMaps
from scseg.attention_report import VOLUME_PLANES, edge_letters


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


# RAS axis each plane is taken across, and its (column, row) axes; slices are shown
# transposed, origin lower
_PLANES = {name: axis for name, axis, _, _, _ in VOLUME_PLANES}
_AXES = {name: (col, row) for name, _, col, row, _ in VOLUME_PLANES}
CONVENTIONS = ("neurological", "radiological")


def _cut(array: np.ndarray, plane: str, position: int, radiological: bool = False) -> np.ndarray:
    """One plane of an ``(X, Y, Z)`` RAS array, as ``imshow(..., origin="lower")`` shows it;
    ``radiological``: mirrored left-right where the columns run across the patient (the
    patient's right on the screen's left, as radiology viewers show it)."""
    cut = np.take(array, position, axis=_PLANES[plane]).T
    return cut[:, ::-1] if edge_letters(plane, radiological)[0] else cut


def _orient(ax: plt.Axes, plane: str, spacing: Sequence[float] | None, radiological: bool) -> None:
    """Draws the plane to scale (its voxels' aspect from ``spacing``) and puts the
    orientation letters at its edges."""
    col, row = _AXES[plane]
    if spacing is not None:
        ax.set_aspect(float(spacing[row]) / float(spacing[col]))
    left, right, bottom, top = edge_letters(plane, radiological)[1]
    style = {"transform": ax.transAxes, "color": "#ffd84d", "fontsize": 9, "fontweight": "bold"}
    for text, x, y, ha, va in ((left, 0.02, 0.5, "left", "center"),
                               (right, 0.98, 0.5, "right", "center"),
                               (bottom, 0.5, 0.02, "center", "bottom"),
                               (top, 0.5, 0.98, "center", "top")):  # fmt: skip
        ax.text(x, y, text, ha=ha, va=va, gid=f"orientation-{text}", **style)


def _convention(name: str) -> bool:
    """Whether ``name`` is the radiological convention; ValueError for an unknown one."""
    if name not in CONVENTIONS:
        raise ValueError(f"unknown convention {name!r}; choose from {list(CONVENTIONS)}")
    return name == "radiological"


def plot_sse_planes(
    volume: torch.Tensor | np.ndarray,
    maps: AttentionMaps,
    slices: Sequence[int] | None = None,
    index: int = 0,
    spacing: Sequence[float] | None = None,
    convention: str = "neurological",
) -> plt.Figure:
    """For a 3D input: each block's sSE map in axial, coronal and sagittal planes, each
    with its orientation letters.

    Args:
        volume: ``(B, C, X, Y, Z)`` input (RAS order: X left-right, Y back-front, Z up).
        maps: from :func:`capture` with ``upsample=True``.
        slices: ``(x, y, z)`` indices of the planes (default: the centre).
        spacing: voxel size (mm) along X, Y, Z, so anisotropic planes are drawn to scale
            (default: cubic voxels).
        convention: ``"neurological"`` (the patient's right on the screen's right) or
            ``"radiological"`` (on the left, as radiology viewers show it).
    """
    radiological = _convention(convention)
    vol = _np(volume)[index, 0]
    centre = slices or [s // 2 for s in vol.shape]
    planes = {name: partial(_cut, plane=name, position=centre[axis], radiological=radiological)
              for name, axis in _PLANES.items()}  # fmt: skip
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
    for ax, name in zip(axes.flat, list(planes) * rows, strict=True):
        ax.set_xticks([])
        ax.set_yticks([])
        _orient(ax, name, spacing, radiological)
    return fig


def plot_volume_slice(
    volume: torch.Tensor | np.ndarray,
    maps: AttentionMaps,
    prediction: torch.Tensor | np.ndarray | None = None,
    plane: str = "axial",
    position: int | None = None,
    block: int | None = None,
    index: int = 0,
    spacing: Sequence[float] | None = None,
    convention: str = "neurological",
) -> plt.Figure:
    """One slice of a volume: the image, the prediction over it, one decoder block's sSE
    gate over it and that block's cSE weights (the view behind the notebooks' slider).

    Args:
        volume: ``(B, C, X, Y, Z)`` input, RAS.
        maps: from :func:`scseg.attention_maps.capture` with ``upsample=True``.
        prediction: ``(B, X, Y, Z)`` classes (optional).
        plane: ``"axial"``, ``"coronal"`` or ``"sagittal"``.
        position: slice index along the plane's axis (default: the middle).
        block: decoder block (default: the last one that has sSE).
        spacing, convention: as :func:`plot_sse_planes`.
    """
    if plane not in _PLANES:
        raise ValueError(f"unknown plane {plane!r}; choose from {sorted(_PLANES)}")
    radiological = _convention(convention)
    blocks = _present(maps.sse)
    block = blocks[-1] if block is None and blocks else block
    vol = _np(volume)[index, 0]
    axis = _PLANES[plane]
    position = vol.shape[axis] // 2 if position is None else position
    if not 0 <= position < vol.shape[axis]:
        raise ValueError(f"slice {position} is outside 0..{vol.shape[axis] - 1} ({plane})")

    cut = partial(_cut, plane=plane, position=position, radiological=radiological)

    has_cse = block is not None and maps.cse[block] is not None
    fig, axes = plt.subplots(1, 3 + has_cse, figsize=(3.2 * (3 + has_cse), 3.4),
                             layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 1] + [1.6] * has_cse})  # fmt: skip
    base = cut(vol)
    for ax, title in zip(axes[:3], ("image", "prediction", f"sSE, block {block}"), strict=True):
        ax.imshow(base, cmap="gray", origin="lower")
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    if prediction is not None:
        classes = cut(_np(prediction)[index])
        axes[1].imshow(np.ma.masked_equal(classes, 0), cmap="tab10", alpha=0.5, vmin=0, vmax=9,
                       origin="lower", interpolation="nearest")  # fmt: skip
    if block is not None and maps.sse[block] is not None:
        shown = axes[2].imshow(cut(_np(maps.sse[block])[index, 0]), cmap="inferno", alpha=0.6,
                               vmin=0, vmax=1, origin="lower")  # fmt: skip
        fig.colorbar(shown, ax=axes[2], shrink=0.8, label="sSE gate")
    for ax in axes[:3]:  # after every imshow, which sets its own aspect
        _orient(ax, plane, spacing, radiological)
    if has_cse:
        weights = _np(maps.cse[block])[index]
        axes[3].bar(np.arange(len(weights)), weights, width=1.0, color="#3b7dd8")
        axes[3].set_ylim(0, 1)
        axes[3].set_xlabel("channel")
        axes[3].set_title(f"cSE weights, block {block}")
    fig.suptitle(f"{plane} slice {position}")
    return fig


def plot_gate_by_class(rows: Sequence[dict]) -> plt.Figure:
    """Mean sSE gate inside versus outside each predicted class, per decoder block, from
    :func:`scseg.attention_maps.gate_by_class`; classes ordered by size, shares in the
    labels."""
    if not rows:
        raise ValueError("no sSE maps were captured (attention 'none' or 'cse')")
    blocks = sorted({r["block"] for r in rows})
    classes = sorted({r["class"] for r in rows if r["voxels"]},
                     key=lambda c: next(r["share"] for r in rows if r["class"] == c))  # fmt: skip
    fig, axes = plt.subplots(1, len(blocks), figsize=(3.4 * len(blocks), 3.6), sharey=True,
                             squeeze=False, layout="constrained")  # fmt: skip
    for ax, block in zip(axes[0], blocks, strict=True):
        by_class = {r["class"]: r for r in rows if r["block"] == block}
        x = np.arange(len(classes))
        ax.bar(x - 0.2, [by_class[c]["inside"] for c in classes], 0.4, label="inside")
        ax.bar(x + 0.2, [by_class[c]["outside"] for c in classes], 0.4, label="outside")
        ax.set_xticks(x, [f"{by_class[c]['name']}\n{100 * by_class[c]['share']:.1f} %"
                          for c in classes], fontsize=8)  # fmt: skip
        ax.set_title(f"decoder block {block}")
        ax.set_ylim(0, 1)
    axes[0, 0].set_ylabel("mean sSE gate")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("sSE gate inside and outside each predicted structure (smallest first)")
    return fig
