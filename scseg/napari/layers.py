"""The layers the Segment widget adds: labels named and coloured by the model's classes,
the sSE maps as hidden Image layers, and the cSE weights as a small plot; all on the grid
(and world affine) of the scan they were predicted on."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def placement(source) -> dict:
    """Where ``source``'s data sits in the world (the layer arguments that place it), for
    a layer on the same grid or for :func:`scseg.napari.writer.world_affine`."""
    return {"affine": source.affine.affine_matrix, "scale": source.scale,
            "translate": source.translate, "rotate": source.rotate,
            "shear": source.shear}  # fmt: skip


def labels_layer(model, model_path: Path, labels: np.ndarray, source):
    """A Labels layer named after the model, each class in its package colour and named
    on hover; its metadata keeps the scan's source (DICOM-SEG is written against it)."""
    from napari.layers import Labels
    from napari.utils.colormaps import DirectLabelColormap

    from scseg.inference.package import class_colours

    names = ["background", *model.class_names] if model.multilabel else model.class_names
    colours = class_colours(len(names))
    colormap = DirectLabelColormap(
        color_dict={
            None: "transparent",
            0: "transparent",
            **{i: colours[i] for i in range(1, len(names))},
        }
    )
    return Labels(
        # as predicted (uint8 up to 255 classes): napari checks an int32 volume for 0.5 s
        np.asarray(labels), name=f"{model_path.stem} labels", colormap=colormap,
        features={"class": names}, metadata={**source.metadata, "model": str(model_path)},
        **placement(source),
    )  # fmt: skip


def attention_layer(maps, k: int, source):
    """A hidden Image layer of the sSE map of the ``k``-th decoder block with sSE (a gate
    in 0..1) on the scan's grid, drawn translucent over the scan when shown, its contrast
    the map's own 1st to 99th percentile (the gates of one block span a narrow band)."""
    from napari.layers import Image

    _, values = maps.sse[k]
    low, high = _limits(values)
    return Image(
        values, name=f"sSE block {k + 1} of {len(maps.sse)}", colormap="turbo",
        contrast_limits=(low, high), opacity=0.5, blending="translucent", visible=False,
        **placement(source),
    )  # fmt: skip


def _limits(values: np.ndarray) -> tuple[float, float]:
    """The 1st and 99th percentile of a map, from a strided sample (a percentile of the
    whole volume would hold the viewer's event loop for half a second)."""
    sample = values.reshape(-1)[:: max(1, values.size // 200_000)]
    low, high = (float(v) for v in np.percentile(sample, [1, 99]))
    return low, max(high, low + 1e-3)


def cse_plot(maps):
    """The cSE weights of each block (sorted, one line per block) as a small Qt canvas."""
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3.2, 2.2), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    for block, weights in maps.cse:
        ordered = np.sort(weights)[::-1]
        axes.plot(np.linspace(0, 1, len(ordered)), ordered, label=f"block {block + 1}")
    axes.set_xlabel("channels, by weight (share)")
    axes.set_ylabel("cSE weight")
    axes.set_ylim(0, 1)
    axes.legend(fontsize=7)
    return FigureCanvasQTAgg(figure)
