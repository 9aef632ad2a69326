"""Outputs that appear together or not at all, so a rerun can tell a finished case."""

from __future__ import annotations

import pytest

from scseg.inference.writing import OutputExistsError, StagedWrites, atomic_write


def test_staged_outputs_appear_together(tmp_path) -> None:
    with StagedWrites() as staged:
        staged.write(tmp_path / "a.txt", lambda t: t.write_text("a"))
        assert not (tmp_path / "a.txt").exists()  # not before the block ends
        staged.write(tmp_path / "b.txt", lambda t: t.write_text("b"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_a_failure_leaves_none_of_them(tmp_path) -> None:
    def broken(path) -> None:
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), StagedWrites() as staged:
        staged.write(tmp_path / "labels.nii.gz", lambda t: t.write_text("done"))
        staged.write(tmp_path / "names.tsv", broken)
    assert list(tmp_path.iterdir()) == []  # neither output, no temporary file


def test_existing_output_is_refused_before_writing(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("user's")
    with pytest.raises(OutputExistsError, match=r"a\.txt: exists; pass --overwrite"):
        atomic_write(tmp_path / "a.txt", lambda t: t.write_text("new"))
    assert (tmp_path / "a.txt").read_text() == "user's"
    atomic_write(tmp_path / "a.txt", lambda t: t.write_text("new"), overwrite=True)
    assert (tmp_path / "a.txt").read_text() == "new"
