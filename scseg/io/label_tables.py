"""Label look-up tables: the BIDS segmentation table (``*_dseg.tsv``, tab-separated, with
``index`` and ``name`` columns and any others after them) that scseg writes beside each
label map, and reads back to name the labels (``scseg evaluate``, the napari reader)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def label_table(class_names: Sequence[str]) -> str:
    """The class names as a BIDS segmentation look-up table (``index`` and ``name``
    columns), which viewers and pipelines read to name each label value."""
    rows = [f"{i}\t{name}" for i, name in enumerate(class_names)]
    return "\n".join(["index\tname", *rows]) + "\n"


def read_label_table(path: str | Path) -> list[str]:
    """The name of each label value, 0 to the largest, from a look-up table as
    :func:`label_table` writes it; a value the table leaves out is named by its number,
    and other columns, as BIDS allows, are passed over.

    Raises:
        ValueError: naming ``path`` and the line, for a table without ``index`` and
            ``name`` columns, a row short of them, a value that is not a whole number, or
            a value given twice.
    """
    lines = Path(path).read_text().splitlines()
    header = lines[0].split("\t") if lines else []
    if "index" not in header or "name" not in header:
        raise ValueError(f"{path}: line 1 must name the tab-separated columns index and name")
    at, named = (header.index("index"), header.index("name")), {}
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        cells = line.split("\t")
        try:
            value, name = int(cells[at[0]]), cells[at[1]]
        except (IndexError, ValueError):
            raise ValueError(
                f"{path}: line {number} is not a whole-number index and a name, tab-separated"
            ) from None
        if value in named:
            raise ValueError(f"{path}: line {number}: label value {value} is named twice")
        named[value] = name
    return [named.get(i, str(i)) for i in range(max(named, default=0) + 1)]
