"""The layers the Segment widget adds: labels named and coloured by the model's classes,
the sSE maps as hidden Image layers, and the cSE weights as a small plot; all on the grid
(and world affine) of the scan they were predicted on."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _placement(source) -> dict:
    """Where ``source``'s data sits in the world, for a layer on the same grid."""
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
        np.asarray(labels, np.int32), name=f"{model_path.stem} labels", colormap=colormap,
        features={"class": names}, metadata={**source.metadata, "model": str(model_path)},
        **_placement(source),
    )  # fmt: skip


def attention_layers(maps, source) -> list:
    """One hidden Image layer per decoder block with sSE: its spatial map (0..1) on the
    scan's grid, drawn over the scan when shown."""
    from napari.layers import Image

    count = len(maps.sse)
    return [
        Image(
            values,
            name=f"sSE block {k + 1} of {count}",
            colormap="inferno",
            contrast_limits=(0.0, 1.0),
            opacity=0.6,
            blending="additive",
            visible=False,
            **_placement(source),
        )
        for k, (_, values) in enumerate(maps.sse)
    ]


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
