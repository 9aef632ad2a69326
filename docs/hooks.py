"""MkDocs hooks: the CLI reference and the config reference, generated from the code at
build time, so they cannot drift from it.

* ``<!-- scseg:cli -->`` becomes every command of :func:`scseg.cli.build_parser` with its
  usage and a table of its options (flags, meaning, default, choices).
* notebook pages lose nbconvert's loader of the ipywidgets renderer (from a CDN) and say
  where the slider runs instead.
* ``<!-- scseg:config -->`` becomes every key of the model (``model.*``), of each data
  module (``data.init_args.*``) and of each registered network (``model.model_options.*``),
  from the constructors' signatures, with the meaning from their docstrings' ``Args``.
"""

from __future__ import annotations

import argparse
import inspect
import re

CLI_MARK = "<!-- scseg:cli -->"
# nbconvert's page loads the ipywidgets renderer from a CDN; a static page has no kernel
# to drive the notebooks' slider, and the site is meant to read offline
_WIDGET_LOADER = re.compile(
    r"<script>\s*\(function\(\) \{\s*function addWidgetsRenderer.*?</script>", re.S
)
_WIDGET_VIEW = re.compile(
    r'<script type="application/vnd\.jupyter\.widget-view\+json">.*?</script>', re.S
)
_WIDGET_NOTE = (
    '<p class="widget-note"><em>An interactive slider: it runs in JupyterLab '
    "(<code>uv run --group notebooks jupyter lab notebooks/</code>); the static view below "
    "shows the same figures.</em></p>"
)
CONFIG_MARK = "<!-- scseg:config -->"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CLI_MARK in markdown:
        markdown = markdown.replace(CLI_MARK, cli_reference())
    if CONFIG_MARK in markdown:
        markdown = markdown.replace(CONFIG_MARK, config_reference())
    return markdown


def on_post_page(output: str, page, config) -> str:
    if "addWidgetsRenderer" in output:
        output = _WIDGET_VIEW.sub(_WIDGET_NOTE, _WIDGET_LOADER.sub("", output))
    return output


def _cell(text: object) -> str:
    """One table cell: one line, pipes escaped, Sphinx roles (``:func:`x```) as code."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", " ".join(str(text).split()))
    return text.replace("|", "\\|")


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """``(name, help, parser)`` of each subcommand, in the order ``--help`` lists them."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in action._choices_actions}
    return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]


def cli_reference() -> str:
    from scseg.cli import build_parser
    from scseg.cli.common import LIGHTNING_COMMANDS

    parser = build_parser()
    out = [f"```text\n{parser.format_help().strip()}\n```\n"]
    for name, help_text, sub in _subcommands(parser):
        out.append(f"## scseg {name}\n\n{help_text[:1].upper() + help_text[1:]}.\n")
        if name in LIGHTNING_COMMANDS:
            out.append(
                f"`scseg {name} --config FILE [--KEY VALUE ...]` is LightningCLI: every key of "
                "the [config reference](config.md) can be set in the YAML or on the command "
                f"line; `scseg {name} --help` lists them all, `--print_config` shows the "
                "resolved config.\n"
            )
            continue
        if sub.description:
            out.append(f"{sub.description}\n")
        out.append(f"```text\n{sub.format_usage().strip()}\n```\n")
        out.append("| option | meaning | default |\n|---|---|---|")
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flags = ", ".join(f"`{f}`" for f in action.option_strings) or f"`{action.dest}`"
            meaning = action.help or ""
            if action.choices:
                meaning += f" (one of: {', '.join(map(str, action.choices))})"
            if action.required:
                meaning += " **required**"
            default = action.default
            shown = "" if default in (None, False, argparse.SUPPRESS) else f"`{default}`"
            out.append(f"| {flags} | {_cell(meaning)} | {_cell(shown)} |")
        out.append("")
    return "\n".join(out)


def docstring_args(obj) -> dict[str, str]:
    """The ``Args:`` section of a Google-style docstring, by name; an entry naming several
    (``lr, weight_decay: AdamW settings.``) describes each of them."""
    doc = inspect.getdoc(obj) or ""
    found: dict[str, str] = {}
    section = re.search(r"^Args:\n((?:[ \t]+.*\n?|\n)+)", doc, re.M)
    if not section:
        return found
    current: list[str] = []
    for line in section.group(1).splitlines():
        entry = re.match(r"^    ([\w, ]+?)(?: \([^)]*\))?: (.*)$", line)
        if entry:
            current = [n.strip() for n in entry.group(1).split(",")]
            for name in current:
                found[name] = entry.group(2).strip()
        elif line.strip() and current:
            for name in current:
                found[name] += " " + line.strip()
    return found


def _type(annotation) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    return (
        annotation
        if isinstance(annotation, str)
        else getattr(annotation, "__name__", str(annotation))
    )


def _table(obj, prefix: str, skip: tuple[str, ...] = ()) -> str:
    described = docstring_args(obj)
    for base in getattr(obj, "__mro__", ())[1:]:  # data modules document shared keys once
        described = {**docstring_args(base), **described}
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, param in inspect.signature(obj).parameters.items():
        if name in ("self", *skip) or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = "" if param.default is inspect.Parameter.empty else f"`{param.default!r}`"
        meaning = described.get(name, "")
        rows.append(f"| `{prefix}{name}` | {_cell(_type(param.annotation))} | {_cell(default)} | "
                    f"{_cell(meaning)} |")  # fmt: skip
    return "\n".join(rows) + "\n"


def config_reference() -> str:
    from scseg.data import Folder2DDataModule, MSD3DDataModule, MSDSlicesDataModule
    from scseg.models import MODELS
    from scseg.training import SegmentationModule

    out = ["## model\n", "`scseg.training.SegmentationModule`: the network and its training.\n",
           _table(SegmentationModule, "model.")]  # fmt: skip
    out.append("## data\n\n`data.class_path` names one of these; its keys go under "
               "`data.init_args`.\n")  # fmt: skip
    for module in (Folder2DDataModule, MSD3DDataModule, MSDSlicesDataModule):
        first = (inspect.getdoc(module) or "").split("\n\n")[0]
        out += [f"### {module.__name__}\n", f"`scseg.data.{module.__name__}`: {first}\n",
                _table(module, "data.init_args.")]  # fmt: skip
    out.append("## model.model_options\n\nThe options of the network named by `model.arch` "
               "(`spatial_dims`, `in_channels`, `classes` and `attention` are set from the "
               "model's own keys).\n")  # fmt: skip
    for name in MODELS.names():
        factory = MODELS.get(name)
        own = ("spatial_dims", "in_channels", "classes", "attention")
        out += [f"### {name}\n", _table(factory, "model.model_options.", own)]
    return "\n".join(out)
