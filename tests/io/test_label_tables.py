"""The label look-up table scseg writes beside each label map reads back as it was written;
a table a user or another tool wrote is read by its column names, and a broken one is
refused naming the file and the line."""

from __future__ import annotations

import pytest

from scseg.io.label_tables import label_table, read_label_table


def test_written_table_reads_back(tmp_path) -> None:
    names = ["background", "grey matter", "white matter"]
    path = tmp_path / "case.tsv"
    path.write_text(label_table(names))
    assert path.read_text().splitlines()[:2] == ["index\tname", "0\tbackground"]
    assert read_label_table(path) == names


def test_bids_columns_in_any_order_and_gaps(tmp_path) -> None:
    path = tmp_path / "sub-01_dseg.tsv"
    path.write_text("name\tabbreviation\tindex\nbackground\tBG\t0\n\ntumour\tTU\t4\n")
    assert read_label_table(path) == ["background", "1", "2", "3", "tumour"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("value\tlabel\n0\tbackground\n", "line 1 must name the tab-separated columns"),
        ("index\tname\n0\tbackground\n1 grey\n", "line 3 is not a whole-number index"),
        ("index\tname\none\tbackground\n", "line 2 is not a whole-number index"),
        ("index\tname\n1\tgrey\n1\twhite\n", "line 3: label value 1 is named twice"),
        ("", "line 1 must name"),
    ],
)
def test_a_broken_table_names_file_and_line(tmp_path, text, problem) -> None:
    path = tmp_path / "case.tsv"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"case\.tsv: ") as err:
        read_label_table(path)
    assert problem in str(err.value) and "\n" not in str(err.value)
