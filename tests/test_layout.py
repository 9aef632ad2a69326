"""The house stays legible: no module in ``scseg/`` over 450 lines, no function over 80
(issue: "A house the next contributor can carry"), and its imports keep the layers and the
acyclic contracts of ``pyproject.toml`` (import-linter)."""

from __future__ import annotations

import ast

from .conftest import REPO

MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 80


def test_files_and_functions_stay_small() -> None:
    too_long = []
    for path in sorted((REPO / "scseg").rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(REPO)
        if text.count("\n") > MAX_FILE_LINES:
            too_long.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, too_long


def _lint_imports(root, *extra: str):
    """``lint-imports`` with the contracts of ``pyproject.toml`` on the ``scseg`` under
    ``root`` (the package is found from there, as grimp imports it)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--no-logo"]
    return subprocess.run([*command, *extra, str(REPO / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_import_contracts_hold() -> None:
    """The layers and the acyclic contracts of pyproject.toml hold for scseg as it is."""
    run = _lint_imports(REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_import_contracts_catch_a_cycle_and_a_layer_breach(tmp_path) -> None:
    """The same contracts on a copy of scseg with one cycle added (the data augmentation
    importing the 3D data module, which imports it), one reader importing the command line,
    and one new top-level module that no layer names: each is reported."""
    import shutil

    copy = tmp_path / "scseg"
    shutil.copytree(REPO / "scseg", copy, ignore=shutil.ignore_patterns("__pycache__"))
    augment = copy / "data" / "augment.py"
    augment.write_text(augment.read_text() + "\nfrom scseg.data import volumes3d  # noqa\n")
    nrrd = copy / "io" / "nrrd.py"
    nrrd.write_text(nrrd.read_text() + "\nimport scseg.cli.common  # noqa\n")
    (copy / "stray.py").write_text('"""A module no layer names."""\n')
    run = _lint_imports(tmp_path)
    assert run.returncode != 0
    out = run.stdout
    data_cycle = out.split("No cycles are allowed in scseg.data.")[1].split("\n\n")[1]
    assert ".volumes3d -> .augment" in data_cycle or ".augment -> .volumes3d" in data_cycle
    assert "scseg.io is not allowed to import scseg.cli" in out
    assert "scseg.stray" in out  # exhaustive: every module has its layer
