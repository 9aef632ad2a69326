"""Pascal VOC 2012 segmentation, read in place by Folder2DDataModule.

The archive's ``VOCdevkit/VOC2012`` becomes ``OUT/VOC2012``; ``split.json`` comes from
``ImageSets/Segmentation/{train,val}.txt``. Masks are palette PNGs whose indices are the 21
classes, with 255 on object borders (``ignore_index: 255`` in the config).

    python data_scripts/pascal_voc.py --out data
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from _common import Resource, prepare_dataset, run

from scseg.data.convert import write_split

RESOURCES = [  # MD5 as published in torchvision.datasets.VOCSegmentation
    Resource(
        "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
        "VOCtrainval_11-May-2012.tar",
        md5="6cd6e144f989b92b3379bac3b3de84fd",
    )
]
CLASS_NAMES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip


def convert(extracted: Path, out: Path) -> None:
    src = extracted / "VOCdevkit" / "VOC2012"
    lists = src / "ImageSets" / "Segmentation"
    if not (lists / "train.txt").is_file():
        raise ValueError("archive has no VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt")
    train = (lists / "train.txt").read_text().split()
    val = (lists / "val.txt").read_text().split()
    for case in train + val:
        if not (src / "SegmentationClass" / f"{case}.png").is_file():
            raise ValueError(f"{case}: SegmentationClass/{case}.png missing from the archive")
    for item in src.iterdir():
        shutil.move(str(item), out / item.name)
    write_split(out, train, val)


def prepare(
    out: Path,
    downloads: Path | None = None,
    quiet: bool = False,
    resources: list[Resource] | None = None,
) -> Path:
    """Downloads and converts VOC 2012; returns ``out/VOC2012``. Idempotent."""
    return prepare_dataset(Path(out) / "VOC2012", resources or RESOURCES, downloads, quiet, convert)


def main(argv: list[str] | None = None) -> int:
    return run(prepare, "Pascal VOC 2012 segmentation to OUT/VOC2012", argv)


if __name__ == "__main__":
    sys.exit(main())
