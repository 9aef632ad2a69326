"""3D datasets on disk -> cases: the one place that the planner, the data modules and the
checks read a dataset folder through.

Three layouts, told apart by ``dataset.json``:

* **MSD** (``"training": [{"image": ..., "label": ...}, ...]``): the files it lists; a
  multi-channel image is one 4D file.
* **nnU-Net v2 raw** (``"channel_names"``, ``"labels"``, ``"file_ending"``,
  ``"numTraining"``, no ``training`` list): cases found by name as
  ``nnUNetv2_plan_and_preprocess`` finds them, ``imagesTr/<case>_<XXXX><file_ending>``
  for each channel ``XXXX`` and ``labelsTr/<case><file_ending>``; or, where it has a
  ``"dataset"`` entry, the files it names per case (``images`` and ``label``).
* **no dataset.json**: ``imagesTr/<case>.*`` paired with ``labelsTr/<case>.*``.

A case is ``{"image": file, "label": file}``; with channels in files of their own,
``"image"`` is the list of them in channel order (MONAI's ``LoadImage`` stacks them, and
:func:`scseg.io.volumes.read_volume` reads such a list as one 4D volume).
"""

from __future__ import annotations

import json
from pathlib import Path

from scseg.io.volumes import CHANNEL_FILE, VOLUME_SUFFIXES, case_name, is_volume_file

Cases = dict[str, dict[str, str | list[str]]]


class LayoutError(ValueError):
    """A dataset folder that cannot be read; the message names the file and the problem."""


def read_dataset(root: Path) -> tuple[dict, Cases]:
    """``dataset.json`` (``{}`` where there is none) and the cases of a 3D dataset folder,
    in any of the layouts above.

    Raises:
        FileNotFoundError, LayoutError: a missing folder or file, a dataset.json of
            neither layout, files that do not match it (naming them).
    """
    path = root / "dataset.json"
    if not path.is_file():
        return {}, pair_volume_folders(root)
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise LayoutError(f"{path}: not JSON ({err})") from None
    if not isinstance(meta, dict):
        raise LayoutError(f"{path}: not a dataset.json (an object with the dataset's keys)")
    if "training" in meta:
        return meta, _msd_cases(root, meta, path)
    if "dataset" in meta:
        return meta, _listed_cases(root, meta, path)
    if "file_ending" in meta or "channel_names" in meta:
        return meta, nnunet_cases(root, meta, path)
    raise LayoutError(
        f"{path}: neither an MSD dataset.json (a 'training' list) nor an nnU-Net v2 one "
        "('channel_names', 'labels', 'file_ending')"
    )


def pair_volume_folders(root: Path) -> Cases:
    """``imagesTr/<case>.*`` with ``labelsTr/<case>.*``, for a folder without
    ``dataset.json``.

    Raises:
        FileNotFoundError, LayoutError: no ``imagesTr``, no images, or images without labels.
    """
    images, labels = root / "imagesTr", root / "labelsTr"
    if not images.is_dir():
        raise FileNotFoundError(f"{root}: no dataset.json and no imagesTr/ folder (MSD layout)")
    found = {case_name(p): p for p in sorted(images.iterdir()) if is_volume_file(p)}
    if not found:
        raise LayoutError(f"{images}: holds no NIfTI/NRRD volumes")
    have = (
        {case_name(p): p for p in labels.iterdir() if is_volume_file(p)} if labels.is_dir() else {}
    )
    _check_labelled(labels, list(found), have)
    return {
        c: {"image": str(p.resolve()), "label": str(have[c].resolve())} for c, p in found.items()
    }


def _check_labelled(labels: Path, cases: list[str], have: dict) -> None:
    if missing := [c for c in cases if c not in have]:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise LayoutError(f"{labels}: no label for {len(missing)} of {len(cases)} image(s): "
                          f"{', '.join(missing[:5])}{more}")  # fmt: skip


def _msd_cases(root: Path, meta: dict, path: Path) -> Cases:
    try:
        return {
            case_name(e["image"]): {
                "image": str((root / e["image"]).resolve()),
                "label": str((root / e["label"]).resolve()),
            }
            for e in meta["training"]
        }
    except (KeyError, TypeError) as err:
        raise LayoutError(
            f"{path}: not an MSD dataset.json ({type(err).__name__}: {err})"
        ) from None


def _channels(meta: dict, path: Path) -> int:
    names = meta.get("channel_names", meta.get("modality"))
    if not isinstance(names, dict) or not names:
        raise LayoutError(f'{path}: channel_names must name each channel, e.g. {{"0": "T1"}}')
    if sorted(names) != [str(i) for i in range(len(names))]:
        raise LayoutError(
            f"{path}: channel_names keys must be 0..{len(names) - 1}, got {sorted(names)}"
        )
    return len(names)


def _file_ending(meta: dict, path: Path) -> str:
    ending = meta.get("file_ending")
    if not isinstance(ending, str) or not ending.startswith("."):
        raise LayoutError(f'{path}: file_ending must be the images\' suffix, e.g. ".nii.gz"')
    if not ending.lower().endswith(VOLUME_SUFFIXES):
        raise LayoutError(
            f"{path}: file_ending {ending}: scseg reads NIfTI and NRRD volumes here "
            f"({', '.join(VOLUME_SUFFIXES)}); 2D images go in images/ + masks/"
        )
    return ending


def nnunet_cases(root: Path, meta: dict, path: Path) -> Cases:
    """The cases of an nnU-Net v2 raw dataset, found by name as nnU-Net finds them, with
    ``numTraining`` and ``file_ending`` checked against the files.

    Raises:
        FileNotFoundError, LayoutError: naming the folder or file and the problem.
    """
    channels, ending = _channels(meta, path), _file_ending(meta, path)
    images, labels = root / "imagesTr", root / "labelsTr"
    if not images.is_dir():
        raise FileNotFoundError(f"{root}: no imagesTr/ folder (nnU-Net v2 raw dataset)")
    files = sorted(p for p in images.iterdir() if p.is_file() and p.name.endswith(ending))
    if not files:
        others = sorted({"".join(p.suffixes) for p in images.iterdir() if p.is_file()})
        raise LayoutError(
            f"{images}: no file ends in {ending} (dataset.json file_ending)"
            + (f"; found {', '.join(others[:3])}" if others else "")
        )
    found: dict[str, dict[int, Path]] = {}
    for file in files:
        match = CHANNEL_FILE.match(file.name[: -len(ending)])
        if match is None:
            raise LayoutError(
                f"{file}: not named <case>_<channel>{ending} (e.g. case_0000{ending}), as "
                "nnU-Net v2 names images"
            )
        found.setdefault(match["case"], {})[int(match["channel"])] = file
    for case, by_channel in found.items():
        if sorted(by_channel) != list(range(channels)):
            given = ", ".join(f"_{c:04d}" for c in sorted(by_channel))
            raise LayoutError(
                f"{images}: case {case} has channel file(s) {given}; dataset.json names "
                f"{channels} channel(s) (_0000 to _{channels - 1:04d})"
            )
    _check_count(meta, path, len(found), f"{images} holds")
    have = {c: labels / f"{c}{ending}" for c in found if (labels / f"{c}{ending}").is_file()}
    _check_labelled(labels, list(found), have)
    return {
        case: {"image": _image_entry([by_channel[c] for c in range(channels)]),
               "label": str(have[case].resolve())}
        for case, by_channel in sorted(found.items())
    }  # fmt: skip


def _listed_cases(root: Path, meta: dict, path: Path) -> Cases:
    """nnU-Net v2's explicit ``"dataset": {case: {"images": [...], "label": ...}}``."""
    channels = _channels(meta, path)
    listed = meta["dataset"]
    if not isinstance(listed, dict) or not listed:
        raise LayoutError(f"{path}: dataset must map each case to its images and label")
    cases: Cases = {}
    for case, entry in listed.items():
        images = entry.get("images") if isinstance(entry, dict) else None
        label = entry.get("label") if isinstance(entry, dict) else None
        if not isinstance(images, list) or len(images) != channels or not isinstance(label, str):
            raise LayoutError(
                f"{path}: dataset.{case} must give 'images' ({channels} file(s)) and 'label'"
            )
        files = [root / f for f in [*images, label]]
        if missing := [str(f) for f in files if not f.is_file()]:
            raise LayoutError(f"{path}: dataset.{case} names missing file(s) {missing[:3]}")
        cases[case] = {"image": _image_entry(files[:-1]), "label": str(files[-1].resolve())}
    _check_count(meta, path, len(cases), "dataset lists")
    return cases


def _check_count(meta: dict, path: Path, found: int, where: str) -> None:
    """``numTraining``, where given, must be the number of cases found."""
    count = meta.get("numTraining")
    if count is not None and count != found:
        raise LayoutError(f"{path}: numTraining is {count}, but {where} {found} case(s)")


def _image_entry(files: list[Path]) -> str | list[str]:
    resolved = [str(f.resolve()) for f in files]
    return resolved[0] if len(resolved) == 1 else resolved


def image_files(case: dict) -> list[Path]:
    """A case's image file(s), one per channel file."""
    image = case["image"]
    return [Path(p) for p in (image if isinstance(image, list) else [image])]
