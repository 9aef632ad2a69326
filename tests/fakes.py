"""Small archives in the public datasets' own formats, built by the tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _png_bytes(array: np.ndarray, palette: bool = False) -> bytes:
    """A PNG of class indices; ``palette=True`` writes a palette ("P" mode) PNG, as VOC does."""
    if palette:
        image = Image.new("P", array.shape[::-1])
        image.putdata(array.flatten().tolist())
        image.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    else:
        image = Image.fromarray(array)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _jpg_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _nii_bytes(array: np.ndarray, affine: np.ndarray) -> bytes:
    image = nib.Nifti1Image(array, affine)
    return gzip.compress(image.to_bytes())


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _blob_volume(rng: np.random.Generator, shape, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A bright ellipsoid (classes 1..) on a dim background, with noise."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    r = np.sqrt((grid**2).sum(0))
    label = np.zeros(shape, np.uint8)
    label[r < 0.6] = 1
    if classes > 2:
        label[(r < 0.6) & (grid[0] > 0)] = 2
    image = (label * 100 + rng.normal(0, 10, shape)).astype(np.float32)
    return image, label


def msd_task_tar(path: Path, task: str, n_cases: int = 5, shape=(20, 22, 18), classes: int = 3,
                 modality: str = "MRI") -> Path:  # fmt: skip
    rng = np.random.default_rng(0)
    affine = np.diag([1.0, 1.0, 1.2, 1.0])
    prefix = task.split("_")[1].lower()
    cases = [f"{prefix}_{i:03d}" for i in range(1, n_cases + 1)]
    meta = {
        "name": task,
        "modality": {"0": modality},
        "labels": {str(i): n for i, n in enumerate(["background", "a", "b"][:classes])},
        "numTraining": n_cases,
        "training": [
            {"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in cases
        ],
        "test": [],
    }
    with tarfile.open(path, "w") as tf:
        _add(tf, f"{task}/dataset.json", json.dumps(meta).encode())
        for c in cases:
            image, label = _blob_volume(rng, shape, classes)
            _add(tf, f"{task}/imagesTr/{c}.nii.gz", _nii_bytes(image, affine))
            _add(tf, f"{task}/labelsTr/{c}.nii.gz", _nii_bytes(label, affine))
        _add(tf, f"{task}/imagesTr/._{cases[0]}.nii.gz", b"macOS resource fork")
    return path


def _disc_image(rng: np.random.Generator, size=(48, 64), rgb: bool = True):
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.integers(h // 4, 3 * h // 4), rng.integers(w // 4, 3 * w // 4)
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 < (min(h, w) // 4) ** 2
    grey = np.clip(60 + 150 * inside + rng.normal(0, 10, size), 0, 255).astype(np.uint8)
    image = np.stack([grey, grey // 2, 255 - grey], -1) if rgb else grey
    return image, inside


def pet_archives(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    train, test = ["Abyssinian_1", "Bombay_2", "beagle_3"], ["pug_4", "Sphynx_5"]
    images, annotations = folder / "images.tar.gz", folder / "annotations.tar.gz"
    with tarfile.open(images, "w:gz") as ti, tarfile.open(annotations, "w:gz") as ta:
        for i, case in enumerate(train + test):
            image, inside = _disc_image(rng, rgb=i != 1)  # Bombay_2 is greyscale, as some are
            _add(ti, f"images/{case}.jpg", _jpg_bytes(image))
            trimap = np.where(inside, 1, 2).astype(np.uint8)
            trimap[0, :] = 3  # a border stripe
            _add(ta, f"annotations/trimaps/{case}.png", _png_bytes(trimap))
        _add(ta, "annotations/trainval.txt", "".join(f"{c} 1 1 1\n" for c in train).encode())
        _add(ta, "annotations/test.txt", "".join(f"{c} 1 1 1\n" for c in test).encode())
    return images, annotations


def voc_tar(path: Path) -> Path:
    rng = np.random.default_rng(2)
    train, val = ["2007_000032", "2007_000039", "2007_000063"], ["2007_000033", "2007_000042"]
    root = "VOCdevkit/VOC2012"
    with tarfile.open(path, "w") as tf:
        for i, case in enumerate(train + val):
            image, inside = _disc_image(rng)
            _add(tf, f"{root}/JPEGImages/{case}.jpg", _jpg_bytes(image))
            mask = np.where(inside, 1 + i % 20, 0).astype(np.uint8)
            mask[:, :2] = 255  # void border
            _add(tf, f"{root}/SegmentationClass/{case}.png", _png_bytes(mask, palette=True))
        _add(tf, f"{root}/ImageSets/Segmentation/train.txt", "\n".join(train).encode())
        _add(tf, f"{root}/ImageSets/Segmentation/val.txt", "\n".join(val).encode())
    return path


def kvasir_zip(path: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(3)
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            image, inside = _disc_image(rng)
            name = f"cju{i:04d}abc"
            zf.writestr(f"Kvasir-SEG/images/{name}.jpg", _jpg_bytes(image))
            zf.writestr(f"Kvasir-SEG/masks/{name}.jpg", _jpg_bytes((inside * 255).astype(np.uint8)))
    return path


def ellipsoid_subject(shift_mm: float, affine: np.ndarray, size: int = 40):
    """A bright ellipsoid (label 1 on its left half, 2 on its right) with an inner landmark
    in a dim box, moved along x by ``shift_mm``: ``(image float32, labels int16)``."""
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij")).astype(np.float32)
    world = np.einsum("ij,j...->i...", affine[:3, :3], grid) + affine[:3, 3, None, None, None]
    x, y, z = world[0] - shift_mm, world[1], world[2]
    inside = (x / 22) ** 2 + (y / 16) ** 2 + (z / 14) ** 2 < 1
    image = np.where(inside, 100.0, 10.0).astype(np.float32)
    image += 40.0 * (((x / 8) ** 2 + (y / 6) ** 2 + (z / 6) ** 2) < 1)
    labels = np.where(inside, np.where(x < 0, 1, 2), 0).astype(np.int16)
    return image, labels


def ellipsoid_dataset(root: Path, shifts: dict[str, float]) -> Path:
    """An MSD folder of :func:`ellipsoid_subject` cases (2 mm voxels), the first training
    and the rest validating."""
    from scseg.data.convert import write_msd_dataset_json, write_split

    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = -40
    for case, shift in shifts.items():
        image, labels = ellipsoid_subject(shift, affine)
        nib.save(nib.Nifti1Image(image, affine), root / "imagesTr" / f"{case}.nii.gz")
        nib.save(nib.Nifti1Image(labels, affine), root / "labelsTr" / f"{case}.nii.gz")
    cases = list(shifts)
    write_msd_dataset_json(root, "ellipsoids", ["MR"], {0: "background", 1: "left",
                           2: "right"}, cases)  # fmt: skip
    write_split(root, cases[:1], cases[1:])
    return root
