"""Atomic output: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


class OutputExistsError(FileExistsError):
    """The output is there already and overwriting was not asked for."""


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def atomic_write(
    target: str | Path, write: Callable[[Path], None], overwrite: bool = False
) -> Path:
    """Calls ``write(tmp_path)`` and renames the result to ``target``.

    A failure or interruption leaves no ``target`` (and removes the temporary file); an
    existing ``target`` is kept unless ``overwrite``.

    Raises:
        OutputExistsError: if ``target`` exists and ``overwrite`` is false.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target}: exists; pass --overwrite to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Keep the real suffix last: nibabel and PIL choose the format from it.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix="".join(target.suffixes),
                               dir=target.parent)  # fmt: skip
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        # mkstemp creates the file as 0600; give it the mode a plain open() would have
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)
    return target
