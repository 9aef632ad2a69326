"""The README stays a landing page (issue: "a README that stays a landing page"): short,
one headline table whose every row has its no-learning baseline, one command for each use,
and every local link pointing at a file that exists."""

from __future__ import annotations

import re

from .conftest import REPO

MAX_LINES = 150
MAX_HEADLINE_ROWS = 10


def _readme() -> str:
    return (REPO / "README.md").read_text()


def _tables(text: str) -> list[list[list[str]]]:
    """Markdown tables as rows of cells (the header and rule rows dropped)."""
    tables, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            tables.append([r for r in rows[1:] if not set("".join(r)) <= set("-: ")])
            rows = []
    return tables


def test_readme_is_short() -> None:
    lines = _readme().count("\n")
    assert lines <= MAX_LINES, f"README.md has {lines} lines; results tables go to docs/"


def test_one_headline_table_each_row_with_its_baseline() -> None:
    text = _readme()
    results = text.split("## Headline results", 1)[1].split("\n## ", 1)[0]
    (table,) = _tables(results)
    assert 0 < len(table) <= MAX_HEADLINE_ROWS
    for task, score, baseline, page in table:
        assert re.search(r"\d", score) and re.search(r"\d", baseline), task
        assert page.startswith("["), task
    # the only results table: the other table is the reading list
    assert len(_tables(text)) == 2


def test_one_command_for_each_use() -> None:
    text = _readme()
    commands = (
        "uv run scseg fit --config configs/quickstart_2d.yaml",
        "uv run pytest",
        "uv run scseg predict",
        "jupyter lab notebooks/",
        "uv run scseg plan",
    )
    for command in commands:
        assert command in text, command
    config = re.search(r"scseg fit --config (configs/\S+\.yaml)", text).group(1)
    assert (REPO / config).is_file()


def test_local_links_resolve() -> None:
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", _readme()):
        if not target.startswith(("http://", "https://")):
            assert (REPO / target).exists(), target
