"""Training data for label-prior models (:mod:`scseg.atlas.model`, register then refine):
the prior channel, the residual warp that training simulates, and the registered priors of
validation cases (``MSD3DDataModule(label_prior=True)``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from monai import transforms as T

from scseg.atlas.native import write_native_subjects
from scseg.atlas.registration import REGISTRATIONS, prior_path, register_labels

# the residual warp of label-prior training (MSD3DDataModule's prior_warp)
PRIOR_WARP = {"elastic_sigma": (8.0, 12.0), "elastic_magnitude": (100.0, 400.0),
              "rotation": 0.07, "scale": 0.06, "shift": 2.0}  # fmt: skip


# the seeds of registered training copies: apart from the native subjects' (0, 1, ...)
COPY_SEED = 1000


def check_prior_options(registration: str, warp: dict | None, copies: int = 0) -> None:
    """Raises ``ValueError`` for an unknown registration or residual-warp key, or a
    negative number of registered copies."""
    if copies < 0:
        raise ValueError(f"registered_copies must be 0 or more, got {copies}")
    if registration not in REGISTRATIONS:
        raise ValueError(f"prior_registration must be one of {REGISTRATIONS}, got {registration!r}")
    if bad := set(warp or {}) - set(PRIOR_WARP):
        raise ValueError(f"prior_warp takes {', '.join(PRIOR_WARP)}; not {sorted(bad)}")


def prior_channel(enabled: bool) -> list:
    """For label-prior models, the prior joins the image as its last channel."""
    if not enabled:
        return []
    return [T.ConcatItemsd(("image", "prior"), "image"), T.DeleteItemsd("prior")]


def residual_warp(options: dict | None) -> list:
    """What an atlas registration leaves: a smooth elastic warp and a small affine error
    of image and labels, the prior staying where it was (the whole volume, before the
    crop); ``options`` override :data:`PRIOR_WARP`."""
    warp = {**PRIOR_WARP, **(options or {})}
    turn, scale, shift = warp["rotation"], warp["scale"], warp["shift"]
    return [T.Rand3DElasticd(("image", "label"), warp["elastic_sigma"],
                             warp["elastic_magnitude"], prob=1.0, rotate_range=(turn,) * 3,
                             scale_range=(scale,) * 3, translate_range=(shift,) * 3,
                             mode=("bilinear", "nearest"), padding_mode="zeros")]  # fmt: skip


def registered_copies(item: dict, atlas_files: dict, folder: Path, count: int) -> list[dict]:
    """``count`` copies of a training case moved as a native subject is
    (:func:`scseg.atlas.native.write_native_subjects`, seeds from :data:`COPY_SEED`), each
    with the atlas registered to it as prediction registers it: training then sees the
    prior that prediction gives (registration's own errors), not a simulated one. Written
    once into ``folder``, named by the case's file stamps."""
    stamp = prior_path(folder, item["image"], item["label"]).name.removesuffix(".nii.gz")
    out = folder / f"copies-{stamp}"
    names = write_native_subjects(Path(item["image"]), Path(item["label"]), out, count,
                                  COPY_SEED, prefix="moved")  # fmt: skip
    copies = []
    for name in names:
        image, label = (str(out / kind / f"{name}.nii.gz") for kind in ("imagesTr", "labelsTr"))
        prior = registered_prior(folder, image, atlas_files)
        copies.append({"image": image, "label": label, "prior": prior,
                       "case": f"{item['case']}/{name}"})  # fmt: skip
    return copies


def registered_prior(folder: Path, image: str, atlas_files: dict) -> str:
    """The atlas registered to ``image``, kept in ``folder`` by file stamps."""
    out = prior_path(folder, image, atlas_files["image"])
    if not out.is_file():
        register_labels(image, atlas_files["image"], atlas_files["label"], out,
                        atlas_files["registration"])  # fmt: skip
    return str(out)


def prior_items(
    pairs: dict,
    split: dict,
    atlas_case: str | None,
    registration: str,
    folder: Path,
    copies: int = 0,
) -> tuple[dict, Callable[[list[str]], list[dict]]]:
    """The atlas's files (and how it is registered) and ``with_case`` for label-prior
    training: training cases are their own prior, or with ``copies``, that many moved
    copies of each with the atlas registered to them (:func:`registered_copies`); the
    others get the atlas registered to them
    (:func:`scseg.atlas.registration.register_labels`), once: kept by file stamps in
    ``folder`` (the data module's preprocessing cache)."""
    atlas = atlas_case or split["train"][0]
    if atlas not in pairs:
        raise ValueError(f"atlas_case {atlas!r} is not a case of the dataset")
    atlas_files = {**pairs[atlas], "registration": registration}
    train = set(split["train"])

    def with_case(cases: list[str]) -> list[dict]:
        items = []
        for case in cases:
            item = {**pairs[case], "case": case}
            if case in train and copies:
                items += registered_copies(item, atlas_files, folder, copies)
                continue
            item["prior"] = item["label"] if case in train else (
                registered_prior(folder, item["image"], atlas_files))  # fmt: skip
            items.append(item)
        return items

    return atlas_files, with_case
