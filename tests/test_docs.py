"""The documentation site, built with ``mkdocs build --strict`` and opened in headless
Chromium over a loopback HTTP server (as ``mkdocs serve`` shows it): the CLI reference
lists every command and option of the real parser, every notebook page shows its figures,
the config reference has every key of the constructors, and no page logs a console error
or links to a page or anchor that does not exist.

``SCSEG_DOCS_SITE`` may name a site already built (``.ci/run`` builds one); otherwise it
is built here. The browser comes from :mod:`tests.test_attention_report`.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import re
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

from .conftest import REPO
from .test_attention_report import browser  # noqa: F401 - the shared Chromium session

NOTEBOOKS = ("attention_2d", "attention_3d", "attention_classes")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    given = os.environ.get("SCSEG_DOCS_SITE")
    if given and (Path(given) / "index.html").is_file():
        return Path(given)
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                           "--site-dir", str(out)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def served(site):
    """The site at http://127.0.0.1:PORT/, from a server on the loopback interface only."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def _open(browser, url: str) -> None:  # noqa: F811
    browser.get(url)
    browser.execute_script("return document.readyState")


def _severe(browser) -> list[dict]:  # noqa: F811
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_cli_reference_lists_every_command_and_option(browser, served) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    from scseg.cli import build_parser

    _open(browser, served + "cli/")
    headings = {h.text.strip() for h in browser.find_elements(By.CSS_SELECTOR, "article h2")}
    codes = {c.text.strip() for c in browser.find_elements(By.CSS_SELECTOR, "article td code")}
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert len(action.choices) == 14
    for name, sub in action.choices.items():
        assert f"scseg {name}" in headings, name
        for option in sub._actions:
            if isinstance(option, argparse._HelpAction):
                continue
            for flag in option.option_strings or [option.dest]:
                assert flag in codes, (name, flag)
    assert _severe(browser) == []


def test_config_reference_has_every_constructor_key(browser, served) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    from scseg.data import Folder2DDataModule, MSD3DDataModule, MSDSlicesDataModule
    from scseg.training import SegmentationModule

    _open(browser, served + "config/")
    codes = {c.text.strip() for c in browser.find_elements(By.CSS_SELECTOR, "article td code")}
    for cls, prefix in ((SegmentationModule, "model."), (MSD3DDataModule, "data.init_args."),
                        (Folder2DDataModule, "data.init_args."),
                        (MSDSlicesDataModule, "data.init_args.")):  # fmt: skip
        for key in inspect.signature(cls).parameters:
            assert f"{prefix}{key}" in codes, (cls.__name__, key)
    assert "model.model_options.encoder_name" in codes and "model.model_options.channels" in codes


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_pages_show_their_figures(browser, served, name) -> None:  # noqa: F811
    notebook = json.loads((REPO / "notebooks" / f"{name}.ipynb").read_text())
    figures = sum("image/png" in output.get("data", {})
                  for cell in notebook["cells"] for output in cell.get("outputs", []))  # fmt: skip
    assert figures >= 1
    _open(browser, served + f"notebooks/{name}/")
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('article img'))"
        ".filter(i => i.complete && i.naturalWidth > 50 && i.naturalHeight > 50).length;"
    )
    assert shown >= figures, (name, shown, figures)
    assert _severe(browser) == []


def _pages(site: Path) -> list[str]:
    return sorted(
        str(p.relative_to(site).parent).replace(".", "") for p in site.rglob("index.html")
    )


def test_no_console_error_and_no_broken_internal_link(browser, served, site) -> None:  # noqa: F811
    ids: dict[str, set[str]] = {}

    def anchors(path: Path) -> set[str]:
        if str(path) not in ids:
            ids[str(path)] = set(re.findall(r'\bid="([^"]+)"', path.read_text("utf-8")))
        return ids[str(path)]

    broken, errors, seen = [], {}, 0
    for page in _pages(site):
        url = served + (page + "/" if page else "")
        _open(browser, url)
        if severe := _severe(browser):
            errors[url] = severe
        links = browser.execute_script(
            "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);"
        )
        for link in links:
            target, fragment = urldefrag(urljoin(url, link))
            if not target.startswith(served):
                continue  # another site: not ours to check here
            seen += 1
            path = site / urlparse(target).path.lstrip("/")
            path = path / "index.html" if path.is_dir() or not path.suffix else path
            if not path.is_file():
                broken.append(f"{url} -> {link}")
            elif fragment and path.suffix == ".html" and fragment not in anchors(path):
                broken.append(f"{url} -> {link} (no #{fragment})")
    assert seen > 100 and not broken, broken[:20]
    assert not errors, errors
