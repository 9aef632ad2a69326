"""The notebooks run end to end (with small settings) and write their figures."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import REPO


@pytest.mark.parametrize(
    ("notebook", "settings", "figures"),
    [
        ("attention_2d", {"SCSEG_NB_EPOCHS": "1"},
         ["attention_2d_sse.png", "attention_2d_cse.png"]),
        ("attention_3d", {"SCSEG_NB_EPOCHS": "1", "SCSEG_NB_PATCH": "32,32,32"},
         ["attention_3d_sse.png", "attention_3d_cse.png"]),
    ],
)  # fmt: skip
def test_notebook_runs(notebook, settings, figures, data_env, tmp_path, monkeypatch) -> None:
    for key, value in {**settings, "SCSEG_NB_FIGURES": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(REPO / "notebooks" / f"{notebook}.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()
    for figure in figures:
        assert (tmp_path / figure).stat().st_size > 10_000
    printed = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "sSE maps:" in printed and "cSE weights:" in printed
