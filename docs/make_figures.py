"""Regenerates the README's attention figure by running the 2D notebook in full.

uv run python docs/make_figures.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE.parent / "notebooks" / "attention_2d.ipynb"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SCSEG_NB_FIGURES"] = tmp
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        NotebookClient(notebook, timeout=1800, resources={"metadata": {"path": tmp}}).execute()
        shutil.copy(Path(tmp) / "attention_2d_sse.png", HERE / "attention_2d_sse.png")
    print(HERE / "attention_2d_sse.png")


if __name__ == "__main__":
    main()
