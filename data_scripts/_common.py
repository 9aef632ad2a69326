"""Shared pieces of the dataset scripts: a resource record, fetching, and the command line.

The scripts are run as ``python data_scripts/<name>.py --out DIR`` (or ``scseg data
<name>``); the download and conversion machinery they use lives in ``scseg.data``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scseg.data.download import DownloadError, atomic_dir, download, safe_extract_all


@dataclass(frozen=True)
class Resource:
    """One published archive: where it is and the checksum its publisher gives."""

    url: str
    filename: str
    md5: str | None = None
    sha256: str | None = None


def fetch(resources: Sequence[Resource], downloads: Path, quiet: bool = False) -> list[Path]:
    """Downloads (or reuses, if the checksum matches) every resource into ``downloads``."""
    return [
        download(r.url, downloads / r.filename, sha256=r.sha256, md5=r.md5, quiet=quiet)
        for r in resources
    ]


def prepare_dataset(
    final: Path,
    resources: Sequence[Resource],
    downloads: Path | None,
    quiet: bool,
    convert: Callable[[Path, Path], None],
) -> Path:
    """Fetches the archives, unpacks them and runs ``convert(extracted, out)``, all in a
    temporary folder renamed to ``final`` only when complete. Idempotent: a finished
    ``final`` (it has ``split.json``) is returned as it is."""
    if (final / "split.json").is_file():
        return final
    archives = fetch(resources, Path(downloads or final.parent / "downloads"), quiet)
    with atomic_dir(final) as tmp:
        extracted = tmp / ".extract"
        for archive in archives:
            safe_extract_all(archive, extracted)
        convert(extracted, tmp)
        shutil.rmtree(extracted)
    return final


def run(
    prepare: Callable[..., Path],
    description: str,
    argv: Sequence[str] | None = None,
    configure: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """The command line every script shares: ``--out``, ``--downloads``, ``--quiet``, plus
    the script's own options (added by ``configure``, passed to ``prepare`` by name)."""
    parser = argparse.ArgumentParser(description=description)
    if configure is not None:
        configure(parser)
    own = {a.dest for a in parser._actions} - {"help"}
    parser.add_argument("--out", type=Path, default=Path("data"), help="datasets folder")
    parser.add_argument(
        "--downloads", type=Path, default=None, help="archive folder (default: OUT/downloads)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    extras = {k: v for k, v in vars(args).items() if k in own}
    try:
        path = prepare(args.out, downloads=args.downloads, quiet=args.quiet, **extras)
    except (DownloadError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0
