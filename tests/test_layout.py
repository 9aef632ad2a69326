"""The house stays legible: no module in ``scseg/`` over 450 lines, no function over 80
(issue: "A house the next contributor can carry")."""

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
