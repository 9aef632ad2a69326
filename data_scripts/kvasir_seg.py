"""Kvasir-SEG (Jha et al. 2020): 1,000 colonoscopy images with polyp masks, 2D layout.

The publisher gives no checksum for ``kvasir-seg.zip``, so none is pinned; the conversion
checks the content instead: every image needs its mask. Masks are JPEGs; grey levels of 128
and above are polyp (class 1). A seeded 80/20 split is written.

``datasets.simula.no`` has been seen to omit its intermediate TLS certificate; if the
download fails with CERTIFICATE_VERIFY_FAILED, fetch the zip with a browser into
``--downloads`` and run again.

    python data_scripts/kvasir_seg.py --out data
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
from _common import Resource, prepare_dataset, run
from PIL import Image

from scseg.data.convert import seeded_split, write_split

RESOURCES = [Resource("https://datasets.simula.no/downloads/kvasir-seg.zip", "kvasir-seg.zip")]
MASK_THRESHOLD = 128
CLASS_NAMES = ["background", "polyp"]


def convert(extracted: Path, out: Path) -> None:
    src = extracted / "Kvasir-SEG"
    images = sorted((src / "images").glob("*.jpg"))
    if not images:
        raise ValueError("archive has no Kvasir-SEG/images/*.jpg")
    (out / "images").mkdir()
    (out / "masks").mkdir()
    for image in images:
        mask = src / "masks" / image.name
        if not mask.is_file():
            raise ValueError(f"{image.name}: no mask in Kvasir-SEG/masks")
        shutil.copyfile(image, out / "images" / image.name)
        grey = np.asarray(Image.open(mask).convert("L"))
        Image.fromarray((grey >= MASK_THRESHOLD).astype(np.uint8)).save(
            out / "masks" / f"{image.stem}.png"
        )
    write_split(out, *seeded_split([p.stem for p in images]))


def prepare(
    out: Path,
    downloads: Path | None = None,
    quiet: bool = False,
    resources: list[Resource] | None = None,
) -> Path:
    """Downloads and converts Kvasir-SEG; returns ``out/kvasir_seg``. Idempotent."""
    return prepare_dataset(
        Path(out) / "kvasir_seg", resources or RESOURCES, downloads, quiet, convert
    )


def main(argv: list[str] | None = None) -> int:
    return run(prepare, "Kvasir-SEG to OUT/kvasir_seg", argv)


if __name__ == "__main__":
    sys.exit(main())
