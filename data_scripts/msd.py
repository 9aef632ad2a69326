"""Medical Segmentation Decathlon tasks, in the layout MSD3DDataModule reads.

The archives already use the MSD layout (``dataset.json``, ``imagesTr``, ``labelsTr``);
this script downloads them from the mirror MONAI uses, checks the MD5 MONAI publishes,
drops macOS ``._*`` side files, and writes a seeded 80/20 ``split.json``.

    python data_scripts/msd.py --task Task04_Hippocampus --out data
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from _common import Resource, prepare_dataset, run

from scseg.data.convert import seeded_split, write_split

MIRROR = "https://msd-for-monai.s3-us-west-2.amazonaws.com"
MD5 = {  # as published in monai.apps.DecathlonDataset
    "Task01_BrainTumour": "240a19d752f0d9e9101544901065d872",
    "Task02_Heart": "06ee59366e1e5124267b774dbd654057",
    "Task03_Liver": "a90ec6c4aa7f6a3d087205e23d4e6397",
    "Task04_Hippocampus": "9d24dba78a72977dbd1d2e110310f31b",
    "Task05_Prostate": "35138f08b1efaef89d7424d2bcc928db",
    "Task06_Lung": "8afd997733c7fc0432f71255ba4e52dc",
    "Task07_Pancreas": "4f7080cfca169fa8066d17ce6eb061e4",
    "Task08_HepaticVessel": "641d79e80ec66453921d997fbf12a29c",
    "Task09_Spleen": "410d4a301da4e5b2f6f86ec3ddba524e",
    "Task10_Colon": "bad7a188931dc2f6acf72b08eb6202d0",
}


def resource(task: str) -> Resource:
    if task not in MD5:
        raise ValueError(f"unknown MSD task {task!r}; choose one of: {', '.join(MD5)}")
    return Resource(f"{MIRROR}/{task}.tar", f"{task}.tar", md5=MD5[task])


def convert(extracted: Path, task: str, out: Path) -> None:
    """Moves the extracted task into ``out`` and writes its split."""
    src = extracted / task
    if not (src / "dataset.json").is_file():
        raise ValueError(f"{task}: archive has no {task}/dataset.json")
    for junk in src.rglob("._*"):
        junk.unlink()
    meta = json.loads((src / "dataset.json").read_text())
    cases = [Path(e["image"]).name.removesuffix(".nii.gz") for e in meta["training"]]
    for case in cases:
        for folder in ("imagesTr", "labelsTr"):
            if not (src / folder / f"{case}.nii.gz").is_file():
                raise ValueError(f"{task}: {folder}/{case}.nii.gz is listed but missing")
    for item in src.iterdir():
        shutil.move(str(item), out / item.name)
    write_split(out, *seeded_split(cases))


def prepare(
    out: Path,
    task: str = "Task04_Hippocampus",
    downloads: Path | None = None,
    quiet: bool = False,
    resources: list[Resource] | None = None,
) -> Path:
    """Downloads and converts ``task``; returns ``out/<task>``. Idempotent."""
    return prepare_dataset(
        Path(out) / task,
        resources or [resource(task)],
        downloads,
        quiet,
        lambda extracted, tmp: convert(extracted, task, tmp),
    )


def main(argv: list[str] | None = None) -> int:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--task", default="Task04_Hippocampus", choices=sorted(MD5))

    return run(prepare, "Medical Segmentation Decathlon task to OUT/<task>", argv, configure)


if __name__ == "__main__":
    sys.exit(main())
