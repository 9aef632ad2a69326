"""A self-contained HTML report of captured attention: the image, the prediction and each
decoder block's sSE gate as overlays, with a plane and slice slider for volumes, and the
cSE weights per block as bar charts. One file with the data embedded (base64 uint8
arrays drawn on canvases by plain JavaScript), no network access, no server.

    html = report_html(image, prediction, maps.sse, maps.cse, title="case 7")
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence

import numpy as np

# (name, slice axis, column axis, row axis, rows bottom-up) of a RAS volume (X, Y, Z):
# the planes of scseg.attention_plots.plot_sse_planes, in the neurological convention
# (the patient's right on the screen's right; radiological=True mirrors the columns
# that run across the patient), with the letters at their (left, right, bottom, top)
VOLUME_PLANES = (
    ("axial", 2, 0, 1, True),
    ("coronal", 1, 0, 2, True),
    ("sagittal", 0, 1, 2, True),
)
PLANE_LETTERS = {"axial": "LRPA", "coronal": "LRIS", "sagittal": "PAIS"}
IMAGE_PLANES = (("image", 2, 1, 0, False),)  # (H, W) as (H, W, 1): rows top-down


def edge_letters(name: str, radiological: bool) -> tuple[bool, str]:
    """Whether a volume plane is shown mirrored (``radiological``: the patient's right on
    the screen's left, for the planes whose columns run across the patient) and the
    orientation letters at its left, right, bottom and top edges then. The one rule for
    the PNG figures (:mod:`scseg.attention_plots`) and this page."""
    _, _, col, _, _ = next(p for p in VOLUME_PLANES if p[0] == name)
    mirror = radiological and col == 0
    left, right, bottom, top = PLANE_LETTERS[name]
    return mirror, (right + left if mirror else left + right) + bottom + top


def _plane(plane: tuple, radiological: bool) -> dict:
    """One plane as the page draws it: axes, row and column flips, edge letters."""
    info = dict(zip(("name", "slice", "col", "row", "flip"), plane, strict=True))
    info["mirror"] = False
    if info["name"] in PLANE_LETTERS:
        info["mirror"], letters = edge_letters(info["name"], radiological)
        info["letters"] = dict(zip(("left", "right", "bottom", "top"), letters, strict=True))
    return info


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.uint8).tobytes()).decode()


def _window(image: np.ndarray) -> np.ndarray:
    """Intensities to 0..255 between the 0.5th and 99.5th percentiles (what viewers show)."""
    low, high = np.percentile(image, [0.5, 99.5]) if image.size else (0.0, 1.0)
    scaled = (image.astype(np.float32) - low) / max(float(high - low), 1e-8)
    return np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def _lut(name: str, n: int) -> list[list[int]]:
    from matplotlib import colormaps

    colours = colormaps[name].resampled(n)(np.arange(n))[:, :3]
    return np.round(colours * 255).astype(int).tolist()


def _bars(weights: np.ndarray, block: int) -> str:
    """cSE weights of one block as an inline SVG bar chart (0..1, one bar per channel)."""
    width, height, pad = 360, 90, 24
    step = (width - pad) / max(len(weights), 1)
    bars = "".join(
        f'<rect x="{pad + i * step:.2f}" y="{height - w * (height - 10):.2f}" '
        f'width="{max(step - 0.5, 0.5):.2f}" height="{w * (height - 10):.2f}">'
        f"<title>channel {i}: {w:.3f}</title></rect>"
        for i, w in enumerate(np.clip(weights, 0, 1).tolist())
    )
    axis = (
        f'<line x1="{pad}" y1="{height}" x2="{width}" y2="{height}" class="axis"/>'
        f'<text x="{pad - 4}" y="14" class="tick">1</text>'
        f'<text x="{pad - 4}" y="{height}" class="tick">0</text>'
    )
    return (
        f'<figure class="cse"><svg width="{width}" height="{height + 4}" role="img" '
        f'aria-label="cSE weights of decoder block {block}">{axis}{bars}</svg>'
        f"<figcaption>block {block}: {len(weights)} channels, mean "
        f"{float(np.mean(weights)):.3f}</figcaption></figure>"
    )


def report_html(
    image: np.ndarray,
    prediction: np.ndarray,
    sse: Sequence[np.ndarray | None],
    cse: Sequence[np.ndarray | None],
    title: str,
    class_names: Sequence[str] | None = None,
    spacing: Sequence[float] | None = None,
    notes: Sequence[str] = (),
    radiological: bool = False,
) -> str:
    """The report as one HTML page.

    Args:
        image: ``(H, W)`` image or ``(X, Y, Z)`` RAS volume, one channel.
        prediction: class map of the same shape.
        sse: per decoder block, its sSE gate resized to the image (values 0..1) or None.
        cse: per decoder block, its cSE weights ``(C,)`` or None.
        title: shown as the page's heading.
        class_names: for the legend (default ``class 0``, ``class 1``, ...).
        spacing: voxel size in mm, so anisotropic planes are drawn to scale.
        notes: lines shown under the heading (checkpoint, input, preprocessing).
        radiological: volumes with the patient's right on the screen's left (radiology
            viewers' convention); by default on the right (neurological). Each plane
            carries its orientation letters either way.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"expected a 2D image or a 3D volume, got shape {image.shape}")
    volume = image.ndim == 3
    shape3 = image.shape if volume else (*image.shape, 1)
    prediction = np.asarray(prediction)
    for name, array in [("prediction", prediction)] + [
        (f"sSE map {i}", m) for i, m in enumerate(sse) if m is not None
    ]:
        if np.shape(array) != image.shape:
            raise ValueError(f"{name} has shape {np.shape(array)}, the image {image.shape}")
    classes = max(int(prediction.max(initial=0)) + 1, len(class_names or ()))
    names = list(class_names or [f"class {i}" for i in range(classes)])
    names += [f"class {i}" for i in range(len(names), classes)]
    colours = _lut("tab20", 20)
    voxel = [float(v) for v in (spacing or ())][:3] if volume else []
    voxel += [1.0] * (3 - len(voxel))
    blocks = [
        {"name": f"sSE, decoder block {i}", "data": _b64(np.round(np.clip(m, 0, 1) * 255))}
        for i, m in enumerate(sse)
        if m is not None
    ]
    payload = {
        "shape": list(shape3),
        "spacing": voxel,
        "planes": [_plane(p, radiological) for p in (VOLUME_PLANES if volume else IMAGE_PLANES)],
        "image": _b64(_window(image)),
        "prediction": _b64(prediction.astype(np.int64) % 256),
        "classColours": colours,
        "gate": _lut("inferno", 256),
        "blocks": blocks,
    }
    legend = "".join(
        f'<li><span class="swatch" style="background:rgb{tuple(colours[i % 20])}"></span>'
        f"{i}: {html.escape(str(n))}</li>"
        for i, n in enumerate(names)
        if i > 0
    )
    bars = "".join(_bars(np.asarray(w, dtype=float), i) for i, w in enumerate(cse) if w is not None)
    cse_section = (
        f"<h2>cSE channel weights per decoder block</h2><div class='bars'>{bars}</div>"
        if bars
        else "<p>The model has no cSE (attention 'none' or 'sse').</p>"
    )
    return _TEMPLATE.format(
        title=html.escape(title),
        notes="".join(f"<li>{html.escape(n)}</li>" for n in notes),
        legend=legend,
        cse=cse_section,
        data=json.dumps(payload).replace("</", "<\\/"),
    )


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 1.4em; margin-bottom: 0.2em; }}
h2 {{ font-size: 1.1em; margin-top: 1.5em; }}
ul.notes {{ color: #555; margin-top: 0; }}
.controls {{ display: flex; gap: 1.5em; align-items: center; flex-wrap: wrap; margin: 1em 0; }}
.panels {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure {{ margin: 0; }}
figcaption {{ text-align: center; color: #444; font-size: 0.9em; }}
canvas {{ image-rendering: pixelated; background: #000; display: block; }}
.view {{ position: relative; }}
.letter {{ position: absolute; color: #ffd84d; font: bold 13px system-ui, sans-serif;
  text-shadow: 0 0 2px #000; pointer-events: none; }}
.letter.left {{ left: 3px; top: 50%; transform: translateY(-50%); }}
.letter.right {{ right: 3px; top: 50%; transform: translateY(-50%); }}
.letter.top {{ top: 2px; left: 50%; transform: translateX(-50%); }}
.letter.bottom {{ bottom: 2px; left: 50%; transform: translateX(-50%); }}
ul.legend {{ list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.3em 1em; }}
.swatch {{ display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.3em;
  vertical-align: middle; }}
.gatebar {{ display: inline-block; width: 160px; height: 0.8em; vertical-align: middle;
  background: linear-gradient(to right, #000004, #51127c, #b73779, #fc8961, #fcfdbf); }}
.bars {{ display: flex; flex-wrap: wrap; gap: 16px; }}
.cse rect {{ fill: #3b7dd8; }} .cse .axis {{ stroke: #888; }}
.cse .tick {{ font-size: 10px; text-anchor: end; fill: #666; }}
</style>
</head>
<body>
<h1>{title}</h1>
<ul class="notes">{notes}</ul>
<div class="controls">
  <label id="plane-control">plane <select id="plane"></select></label>
  <label id="slice-control">slice <input id="slice" type="range" min="0" max="0" value="0">
    <output id="slice-value"></output></label>
  <label>overlay opacity <input id="opacity" type="range" min="0" max="100" value="60"></label>
  <span>sSE gate 0 <span class="gatebar"></span> 1</span>
</div>
<div class="panels" id="panels"></div>
<ul class="legend">{legend}</ul>
{cse}
<script type="application/json" id="scseg-data">{data}</script>
<script>
"use strict";
(function () {{
  const data = JSON.parse(document.getElementById("scseg-data").textContent);
  function decode(text) {{
    const raw = atob(text), out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }}
  const shape = data.shape, strides = [shape[1] * shape[2], shape[2], 1];
  const image = decode(data.image), prediction = decode(data.prediction);
  const layers = [
    {{name: "image", values: null}},
    {{name: "prediction", values: prediction, kind: "classes"}},
  ].concat(data.blocks.map(b => ({{name: b.name, values: decode(b.data), kind: "gate"}})));
  const planeSelect = document.getElementById("plane");
  const slider = document.getElementById("slice");
  const sliceValue = document.getElementById("slice-value");
  const opacity = document.getElementById("opacity");
  const panels = document.getElementById("panels");
  data.planes.forEach((p, i) => planeSelect.add(new Option(p.name, i)));
  if (data.planes.length < 2) document.getElementById("plane-control").hidden = true;
  const edges = ["left", "right", "top", "bottom"];
  const canvases = layers.map(layer => {{
    const figure = document.createElement("figure");
    const view = document.createElement("div");
    view.className = "view";
    const canvas = document.createElement("canvas");
    canvas.dataset.layer = layer.name;
    view.append(canvas);
    edges.forEach(edge => {{
      const letter = document.createElement("span");
      letter.className = "letter " + edge;
      view.append(letter);
    }});
    const caption = document.createElement("figcaption");
    caption.textContent = layer.name;
    figure.append(view, caption);
    panels.append(figure);
    return canvas;
  }});
  function plane() {{ return data.planes[Number(planeSelect.value)]; }}
  function draw() {{
    const p = plane(), s = Number(slider.value), alpha = Number(opacity.value) / 100;
    const cols = shape[p.col], rows = shape[p.row];
    const scale = 300 / Math.max(cols * data.spacing[p.col], rows * data.spacing[p.row]);
    sliceValue.textContent = s + " / " + (shape[p.slice] - 1);
    layers.forEach((layer, k) => {{
      const canvas = canvases[k];
      edges.forEach(edge => {{
        canvas.parentNode.querySelector(".letter." + edge).textContent =
          p.letters ? p.letters[edge] : "";
      }});
      canvas.width = cols; canvas.height = rows;
      canvas.style.width = Math.round(cols * data.spacing[p.col] * scale) + "px";
      canvas.style.height = Math.round(rows * data.spacing[p.row] * scale) + "px";
      const ctx = canvas.getContext("2d"), pixels = ctx.createImageData(cols, rows);
      for (let r = 0; r < rows; r++) {{
        const row = p.flip ? rows - 1 - r : r;
        for (let c = 0; c < cols; c++) {{
          const col = p.mirror ? cols - 1 - c : c;
          const index = s * strides[p.slice] + col * strides[p.col] + row * strides[p.row];
          const grey = image[index], at = 4 * (r * cols + c);
          let colour = null;  // the overlay's colour here, if any
          if (layer.kind === "classes" && layer.values[index] > 0) {{
            colour = data.classColours[layer.values[index] % 20];
          }} else if (layer.kind === "gate") {{
            colour = data.gate[layer.values[index]];
          }}
          for (let k = 0; k < 3; k++) {{
            pixels.data[at + k] = colour ? (1 - alpha) * grey + alpha * colour[k] : grey;
          }}
          pixels.data[at + 3] = 255;
        }}
      }}
      ctx.putImageData(pixels, 0, 0);
    }});
  }}
  function choosePlane() {{
    const p = plane();
    slider.max = shape[p.slice] - 1;
    slider.value = Math.floor(shape[p.slice] / 2);
    document.getElementById("slice-control").hidden = shape[p.slice] < 2;
    draw();
  }}
  planeSelect.addEventListener("change", choosePlane);
  slider.addEventListener("input", draw);
  opacity.addEventListener("input", draw);
  choosePlane();
}})();
</script>
</body>
</html>
"""
