"""Atomic output: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import nibabel as nib
import numpy as np


class OutputExistsError(FileExistsError):
    """The output is there already and overwriting was not asked for."""


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def refuse_existing(targets: Iterable[str | Path], overwrite: bool = False) -> None:
    """Raises before any work is done if one of ``targets`` exists and ``overwrite`` is
    false, so a run never stops half-way through its outputs for this reason.

    Raises:
        OutputExistsError: naming the first existing target.
    """
    if overwrite:
        return
    for target in targets:
        if Path(target).exists():
            raise OutputExistsError(f"{target}: exists; pass --overwrite to replace it")


class StagedWrites:
    """Several outputs that appear together: each is written to a temporary file beside
    its target, and all are renamed into place when the ``with`` block ends without error.
    An error or interruption before then leaves none of them (and no temporary file), so
    a case's outputs are all there or none is, and a rerun can tell a finished case.

    Args:
        overwrite: replace existing targets; otherwise :meth:`write` refuses them.
    """

    def __init__(self, overwrite: bool = False) -> None:
        self.overwrite = overwrite
        self._pending: list[tuple[Path, Path]] = []

    def write(self, target: str | Path, write: Callable[[Path], None]) -> Path:
        """Calls ``write(tmp_path)`` now; ``target`` appears when the block ends.

        Raises:
            OutputExistsError: if ``target`` exists and ``overwrite`` is false.
        """
        target = Path(target)
        refuse_existing([target], self.overwrite)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Keep the real suffix last: nibabel and PIL choose the format from it.
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix="".join(target.suffixes),
                                   dir=target.parent)  # fmt: skip
        os.close(fd)
        tmp_path = Path(tmp)
        self._pending.append((tmp_path, target))
        write(tmp_path)
        # mkstemp creates the file as 0600; give it the mode a plain open() would have
        os.chmod(tmp_path, 0o666 & ~_umask())
        return target

    def __enter__(self) -> StagedWrites:
        return self

    def __exit__(self, kind, *exc) -> None:
        try:
            if kind is None:
                for tmp_path, target in self._pending:
                    os.replace(tmp_path, target)
        finally:
            for tmp_path, _ in self._pending:
                tmp_path.unlink(missing_ok=True)


def atomic_write(
    target: str | Path, write: Callable[[Path], None], overwrite: bool = False
) -> Path:
    """Calls ``write(tmp_path)`` and renames the result to ``target``.

    A failure or interruption leaves no ``target`` (and removes the temporary file); an
    existing ``target`` is kept unless ``overwrite``.

    Raises:
        OutputExistsError: if ``target`` exists and ``overwrite`` is false.
    """
    with StagedWrites(overwrite) as staged:
        return staged.write(target, write)


PROBABILITY_DTYPES = ("float32", "uint8")


class ClassVolumeWriter:
    """Writes a 4D NIfTI ``(X, Y, Z, classes)`` a few classes at a time, so the whole array
    never exists in memory: NIfTI stores the last axis slowest, so each class volume is one
    contiguous block of the file, and blocks go out in class order (through gzip too).

    Args:
        path: ``.nii`` or ``.nii.gz``.
        header: the 4D header (shape, dtype, geometry); written first.
        dtype: ``"float32"``, or ``"uint8"``: probabilities quantised to 0..255 with scale
            1/255 in the header (readers see 0..1 floats, 4x smaller; NIfTI-1 has no
            float16).
    """

    def __init__(self, path: str | Path, header, dtype: str = "float32") -> None:
        from nibabel.openers import Opener
        from nibabel.volumeutils import seek_tell

        if dtype not in PROBABILITY_DTYPES:
            raise ValueError(f"dtype must be one of {PROBABILITY_DTYPES}, got {dtype!r}")
        self.dtype = np.dtype(dtype)
        self.header = header.copy()
        self.header.set_data_dtype(self.dtype)
        if dtype == "uint8":
            self.header.set_slope_inter(1 / 255, 0)
        else:
            self.header.set_slope_inter(1, 0)
        self.expected = int(self.header.get_data_shape()[-1])
        self.written = 0
        self._file = Opener(str(path), "wb")
        self.header.write_to(self._file)
        seek_tell(self._file, self.header.get_data_offset(), write0=True)

    def write(self, chunk) -> None:
        """Appends classes: ``chunk`` ``(k, X, Y, Z)`` of probabilities in 0..1."""
        import numpy as np

        for volume in np.asarray(chunk):
            if self.dtype == np.uint8:
                volume = np.rint(np.clip(volume, 0, 1) * 255)
            self._file.write(volume.astype(self.dtype).tobytes(order="F"))
            self.written += 1

    def close(self) -> None:
        self._file.close()
        if self.written != self.expected:
            raise ValueError(f"wrote {self.written} of {self.expected} class volumes")

    def __enter__(self) -> ClassVolumeWriter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._file.close()


def image_like(
    array: np.ndarray,
    affine: np.ndarray,
    header: nib.Nifti1Header | None,
    intent: str,
    cal_max: float,
) -> nib.Nifti1Image:
    """A NIfTI image with the input's geometry (its affine and its header's codes) and its
    own meaning: ``intent`` (``"label"``: NIFTI_INTENT_LABEL) and display range
    ``0..cal_max``, not the input's intensity window, which would show labels black."""
    new_header = header_like(affine, header, array.shape, array.dtype, intent, cal_max)
    image = nib.Nifti1Image(array, affine, new_header)
    set_forms(image.header, header, affine)  # the constructor may have replaced them
    return image


def header_like(
    affine: np.ndarray,
    header: nib.Nifti1Header | None,
    shape: tuple[int, ...],
    dtype: np.dtype,
    intent: str,
    cal_max: float,
) -> nib.Nifti1Header:
    """The header :func:`image_like` gives an array of ``shape`` and ``dtype``."""
    if header is not None and isinstance(header, nib.Nifti1Header):
        new = header.copy()
    else:
        new = nib.Nifti1Header()
    new.set_data_shape(shape)
    new.set_data_dtype(dtype)
    new.set_slope_inter(1, 0)  # labels are not scaled like the input's intensities
    set_forms(new, header, affine)
    new.set_intent(intent)
    new["cal_min"], new["cal_max"] = 0.0, float(cal_max)
    new["descrip"] = b"scseg " + intent.encode()
    return new


def set_forms(new: nib.Nifti1Header, source: nib.Nifti1Header | None, affine: np.ndarray) -> None:
    """The input's qform and sform with their codes; for NRRD input, the affine as both."""
    if source is not None and isinstance(source, nib.Nifti1Header):
        qform, qcode = source.get_qform(coded=True)
        sform, scode = source.get_sform(coded=True)
        if qcode:
            new.set_qform(qform, code=int(qcode))
        if scode:
            new.set_sform(sform, code=int(scode))
    else:
        new.set_qform(affine, code=1)
        new.set_sform(affine, code=1)
