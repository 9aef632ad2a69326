"""The notebooks run end to end (with small settings) and show what a reader should see:
every figure cell displays its figure inline (an ``image/png`` output that is not blank),
the volume slider renders its view, nothing warns about missing widgets; the committed
notebooks carry their outputs; the ``notebooks`` dependency group resolves from the lock."""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import sys

import nbformat
import numpy as np
import pytest
from PIL import Image

from .conftest import REPO
from .notebook_client import PollingNotebookClient

NOTEBOOKS = ["attention_2d", "attention_3d", "attention_classes"]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _figure_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and "fig = plot_" in c.source]


def _png(data: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("L"))


def _widget_pngs(nb) -> list[str]:
    """PNGs inside the Output widgets whose state the executed notebook stores."""
    state = nb.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}).get("state", {})  # fmt: skip
    return [
        out["data"]["image/png"]
        for model in state.values()
        if model.get("model_name") == "OutputModel"
        for out in model.get("state", {}).get("outputs", [])
        if "image/png" in out.get("data", {})
    ]


@pytest.mark.parametrize(
    ("notebook", "settings", "figures"),
    [
        ("attention_2d", {"SCSEG_NB_EPOCHS": "1", "SCSEG_NB_REPEATS": "1"},
         ["attention_2d_sse.png", "attention_2d_cse.png"]),
        ("attention_3d",
         {"SCSEG_NB_EPOCHS": "1", "SCSEG_NB_REPEATS": "1", "SCSEG_NB_PATCH": "32,32,32"},
         ["attention_3d_sse.png", "attention_3d_cse.png", "attention_3d_slice.png"]),
        ("attention_classes", {"SCSEG_NB_CHECKPOINT": "ckpt_3d"},
         ["attention_classes_gate.png", "attention_classes_sse.png"]),
    ],
)  # fmt: skip
def test_notebook_shows_its_figures(
    notebook, settings, figures, data_env, tmp_path, monkeypatch, request
) -> None:
    for key, value in {**settings, "SCSEG_NB_FIGURES": str(tmp_path)}.items():
        if value == "ckpt_3d":  # a briefly trained quickstart_3d checkpoint, shared
            value = str(request.getfixturevalue("ckpt_3d"))
        monkeypatch.setenv(key, value)
    nb = nbformat.read(REPO / "notebooks" / f"{notebook}.ipynb", as_version=4)
    PollingNotebookClient(
        nb, timeout=600, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    for figure in figures:
        assert (tmp_path / figure).stat().st_size > 10_000
    cells = _figure_cells(nb)
    assert len(cells) >= len(figures)
    for cell in cells:
        shown = [o["data"]["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
        assert len(shown) == 1, f"figure cell shows {len(shown)} images:\n{cell.source}"
        assert _png(shown[0]).std() > 5, f"blank figure:\n{cell.source}"
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    assert "IProgress not found" not in text and "Traceback" not in text
    if notebook == "attention_3d":
        assert "sSE maps:" in text and "cSE weights:" in text
        slider = next(c for c in nb.cells if "interact(" in c.source)
        assert any(WIDGET_VIEW in o.get("data", {}) for o in slider.outputs)
        views = _widget_pngs(nb)
        assert len(views) == 1 and _png(views[0]).std() > 5, "the slider shows its view"
    if notebook == "attention_classes":
        assert "inside" in text and "white matter" in text.lower()


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_committed_notebook_carries_its_outputs(notebook) -> None:
    """What GitHub shows: every figure cell has its image; small enough to render."""
    path = REPO / "notebooks" / f"{notebook}.ipynb"
    assert path.stat().st_size < 3_000_000
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in _figure_cells(nb):
        assert any("image/png" in o.get("data", {}) for o in cell.outputs), cell.source
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code"), "run in full"


def _uv() -> list[str]:
    for found in (os.environ.get("UV"), shutil.which("uv")):
        if found:
            return [found]
    return [sys.executable, "-m", "uv"]


def test_notebooks_group_resolves_from_the_lock() -> None:
    """``uv run --group notebooks jupyter lab notebooks/`` installs JupyterLab and
    ipywidgets from ``uv.lock`` (``--locked``: the lock is current with pyproject)."""
    out = subprocess.run(
        [*_uv(), "export", "--locked", "--only-group", "notebooks", "--no-hashes",
         "--format", "requirements-txt", "--no-emit-project"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    names = {line.split("==")[0].strip() for line in out.stdout.splitlines() if "==" in line}
    assert {"jupyterlab", "ipywidgets", "ipykernel"} <= names, sorted(names)
