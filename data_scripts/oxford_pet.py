"""Oxford-IIIT Pet (Parkhi et al. 2012): trimaps to 3 classes, in the 2D folder layout.

Classes: 0 background, 1 pet, 2 border (trimap values 2, 1, 3). The official
``trainval.txt`` list trains and ``test.txt`` validates. Images that are not RGB (a few are
greyscale or RGBA) are converted to RGB so every image has 3 channels.

    python data_scripts/oxford_pet.py --out data
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
from _common import Resource, prepare_dataset, run
from PIL import Image

from scseg.data.convert import write_split

BASE = "https://www.robots.ox.ac.uk/~vgg/data/pets/data"
RESOURCES = [  # MD5s as published in torchvision.datasets.OxfordIIITPet
    Resource(f"{BASE}/images.tar.gz", "images.tar.gz", md5="5c4f3ee8e5d25df40f4fd59a7f44e54c"),
    Resource(
        f"{BASE}/annotations.tar.gz", "annotations.tar.gz", md5="95a8c909bbe2e81eed6a22bccdf3f68f"
    ),
]
TRIMAP_TO_CLASS = np.array([0, 1, 0, 2], dtype=np.uint8)  # trimap value -> class index
CLASS_NAMES = ["background", "pet", "border"]


def _cases(list_file: Path) -> list[str]:
    return [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]


def convert(extracted: Path, out: Path) -> None:
    (out / "images").mkdir()
    (out / "masks").mkdir()
    train = _cases(extracted / "annotations" / "trainval.txt")
    val = _cases(extracted / "annotations" / "test.txt")
    for case in train + val:
        src = extracted / "images" / f"{case}.jpg"
        trimap = extracted / "annotations" / "trimaps" / f"{case}.png"
        if not src.is_file() or not trimap.is_file():
            raise ValueError(f"{case}: image or trimap missing from the archives")
        with Image.open(src) as im:
            if im.mode == "RGB" and im.format == "JPEG":
                shutil.copyfile(src, out / "images" / f"{case}.jpg")
            else:
                im.convert("RGB").save(out / "images" / f"{case}.jpg", quality=95)
        labels = TRIMAP_TO_CLASS[np.clip(np.asarray(Image.open(trimap)), 0, 3)]
        Image.fromarray(labels).save(out / "masks" / f"{case}.png")
    write_split(out, train, val)


def prepare(
    out: Path,
    downloads: Path | None = None,
    quiet: bool = False,
    resources: list[Resource] | None = None,
) -> Path:
    """Downloads and converts the dataset; returns ``out/oxford_pet``. Idempotent."""
    return prepare_dataset(
        Path(out) / "oxford_pet", resources or RESOURCES, downloads, quiet, convert
    )


def main(argv: list[str] | None = None) -> int:
    return run(prepare, "Oxford-IIIT Pet to OUT/oxford_pet", argv)


if __name__ == "__main__":
    sys.exit(main())
