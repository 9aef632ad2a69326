"""A planned config as commented YAML: each choice with the reason it was made."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from scseg.planning.rules import Plan


def _nest(values: dict) -> dict:
    tree: dict = {}
    for key, value in values.items():
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _scalar(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def to_yaml(plan: Plan, header: list[str]) -> str:
    """The plan's values as YAML, each preceded by its reason as a comment."""
    lines = [f"# {line}" if line else "#" for line in header]

    def emit(node: dict, prefix: str, indent: int) -> None:
        for key, value in node.items():
            path = f"{prefix}{key}"
            pad = "  " * indent
            if reason := plan.reasons.get(path):
                lines.extend(
                    textwrap.wrap(
                        reason,
                        92 - len(pad),
                        initial_indent=f"{pad}# ",
                        subsequent_indent=f"{pad}#   ",
                    )
                )
            if isinstance(value, dict):
                lines.append(f"{pad}{key}:")
                emit(value, f"{path}.", indent + 1)
            else:
                lines.append(f"{pad}{key}: {_scalar(value)}")

    emit(_nest(plan.values), "", 0)
    return "\n".join(lines) + "\n"


def write_config(text: str, path: Path, overwrite: bool = False) -> Path:
    from scseg.inference.writing import atomic_write

    return atomic_write(path, lambda tmp: tmp.write_text(text), overwrite)
