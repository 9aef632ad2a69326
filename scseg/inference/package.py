"""Model packages: one ``.scseg`` file that holds everything a trained model needs.

A package is a zip archive (stored, not compressed: weights do not compress) because a
model is handed on as one file: attached, uploaded, copied. Inside:

* ``scseg-package.json``: the format version and the sha256 of every other file;
* ``model.json``: the architecture, input channels, classes with names and colours, the
  preprocessing (orientation, spacing, intensity normalisation, patch), one entry per fold;
* ``weights/fold_<k>.safetensors``: the weights, as safetensors (no pickle);
* ``card.json`` and ``card.md``: the model card (training data, the run's validation scores
  per class, scseg and torch versions).

A package whose files do not match their sha256, lacks one, or carries a newer format is
refused, naming the file. An ensemble of configurations (format 2,
:func:`write_ensemble_package`) holds each member's ``model.json``, weights and card under
``<member>/``, and a ``model.json`` that lists the members. The sha256 list guards against
damage and edits in transit, not against someone who rewrites it as well: it is not a
signature.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import torch

from scseg import __version__
from scseg.inference.card import render_card
from scseg.inference.checkpoint import (
    PACKAGE_MANIFEST,
    CheckpointError,
    CheckpointParts,
    LoadedModel,
    build_model,
    check_one_plan,
    checkpoint_parts,
    ensemble,
)
from scseg.inference.writing import atomic_write, refuse_existing

FORMAT_VERSION = 1  # what a package of one configuration is written as
ENSEMBLE_VERSION = 2  # an ensemble of configurations: what scseg before it cannot read
MANIFEST = PACKAGE_MANIFEST
SUFFIX = ".scseg"
ORIENTATION = "RAS"  # what the 3D preprocessing reorients to (scseg.data.volumes3d)


class PackageError(CheckpointError):
    """A package cannot be written or read; the message names the file and the problem."""


def is_package(path: str | Path) -> bool:
    """True if ``path`` is a zip holding our manifest (a torch checkpoint is a zip too)."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return MANIFEST in archive.namelist()


def class_colours(classes: int) -> list[str]:
    """The overlay colours of ``scseg predict --overlay`` as ``#rrggbb``, class 0 black."""
    from scseg.inference.image import PALETTE

    return ["#{:02x}{:02x}{:02x}".format(*PALETTE[i % len(PALETTE)]) for i in range(classes)]


def write_package(
    checkpoints: list[str | Path],
    out: str | Path,
    overwrite: bool = False,
    description: str | None = None,
) -> Path:
    """Packs one checkpoint, or the folds of one plan, into ``out``.

    Written to a temporary file beside ``out`` and renamed, so a failure leaves nothing.

    Raises:
        PackageError: ``out`` is not a ``.scseg`` name.
        OutputExistsError: ``out`` exists and ``overwrite`` is false.
        CheckpointError: a checkpoint is unreadable, or the folds do not belong together.
    """
    out = _package_name(out, overwrite)
    files = package_files([Path(p) for p in checkpoints], out.stem, description)
    _write_files(out, files, FORMAT_VERSION, overwrite)
    return out


def package_files(paths: list[Path], name: str, description: str | None = None) -> dict[str, bytes]:
    """The files of a package of one checkpoint or the folds of one plan, by name.

    Raises:
        CheckpointError: a checkpoint is unreadable, or the folds do not belong together.
    """
    parts = [checkpoint_parts(p) for p in paths]
    # the same checks as averaging them at prediction, before anything is written
    check_one_plan(paths, [(p.hparams["spatial_dims"], p.hparams["in_channels"],
                            p.hparams["classes"], p.data_info) for p in parts])  # fmt: skip
    files = {f"weights/fold_{k}.safetensors": _safetensors(p.weights) for k, p in enumerate(parts)}
    model = _model_json(paths, parts)
    card = _card_json(name, paths, parts, description)
    files["model.json"] = _json_bytes(model)
    files["card.json"] = _json_bytes(card)
    files["card.md"] = render_card(card, model).encode()
    return files


def write_ensemble_package(
    members: dict[str, list[Path]],
    out: str | Path,
    overwrite: bool = False,
    description: str | None = None,
    notes: str = "",
) -> Path:
    """Packs the folds of several configurations (``{name: checkpoints}``) as one model
    that predicts with the mean of their probabilities
    (:class:`~scseg.inference.ensemble.ConfigurationEnsemble`). Each member's files lie
    under ``<name>/`` as in a package of its own; ``model.json`` lists the members;
    ``notes`` (Markdown) goes into the card.

    Raises:
        PackageError, OutputExistsError, CheckpointError: as :func:`write_package`; a
            member whose classes or inputs differ from the first one's.
    """
    from scseg.inference.ensemble import check_members

    out = _package_name(out, overwrite)
    files: dict[str, bytes] = {}
    models = []
    for name, paths in members.items():
        member = package_files([Path(p) for p in paths], f"{out.stem}: {name}", description)
        files |= {f"{name}/{file}": data for file, data in member.items()}
        models.append(json.loads(member["model.json"]))
    check_members(list(members), [_spec_model(m) for m in models])
    first = models[0]
    files["model.json"] = _json_bytes({
        **{k: first[k] for k in ("arch", "spatial_dims", "in_channels", "classes")},
        "ensemble": [{"name": name, "model": f"{name}/model.json"} for name in members],
    })  # fmt: skip
    card = {"name": out.stem, "description": description, "members": list(members),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}  # fmt: skip
    files["card.json"] = _json_bytes(card)
    head = [f"# {out.stem}", "", description or "", "",
            f"An ensemble of {len(members)} configurations ({', '.join(members)}): the mean "
            "of their probabilities on the input's grid.", "", notes]  # fmt: skip
    body = ["#" + files[f"{name}/card.md"].decode() for name in members]  # one level down
    files["card.md"] = "\n".join([*head, *body]).encode()
    _write_files(out, files, ENSEMBLE_VERSION, overwrite)
    return out


def _spec_model(model: dict):
    """The parts of a member's ``model.json`` that :func:`check_members` compares, as a
    :class:`LoadedModel` without a network."""
    hp = model["hparams"]
    return LoadedModel(None, hp["spatial_dims"], hp["in_channels"], hp["classes"], hp,
                       model["preprocessing"])  # fmt: skip


def _package_name(out: str | Path, overwrite: bool) -> Path:
    out = Path(out)
    if out.suffix != SUFFIX:
        raise PackageError(f"{out}: a package name ends in {SUFFIX}")
    refuse_existing([out], overwrite)
    return out


def _write_files(out: Path, files: dict[str, bytes], version: int, overwrite: bool) -> None:
    """The files and the manifest of their sha256s, written to a temporary file beside
    ``out`` and renamed, so a failure leaves nothing."""
    manifest = {
        "format": "scseg-package",
        "format_version": version,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr(MANIFEST, _json_bytes(manifest))
            for name, data in files.items():
                archive.writestr(name, data)

    atomic_write(out, write, overwrite)


def read_package(path: str | Path, device: str | torch.device = "cpu", ensembles: bool = False):
    """The model of a package (its folds averaged, as ``--checkpoint`` with several): a
    :class:`LoadedModel`; with ``ensembles``, an ensemble package's
    :class:`~scseg.inference.ensemble.ConfigurationEnsemble`.

    Raises:
        PackageError: naming the package and the file that is missing, changed or newer;
            an ensemble package where ``ensembles`` is false.
    """
    path = Path(path)
    files = read_verified(path)
    model = _json_object(path, files, "model.json")
    if "ensemble" not in model:
        return _read_model(path, files, device)
    members = model["ensemble"]
    if not isinstance(members, list) or not all(
        isinstance(m, dict) and isinstance(m.get("name"), str) for m in members
    ):
        raise PackageError(f"{path}: model.json: 'ensemble' must list named members")
    names = [m["name"] for m in members]
    if not ensembles:
        raise PackageError(f"{path}: an ensemble of configurations ({', '.join(names)}): "
                           "scseg predict reads it, this command takes one model")  # fmt: skip
    from scseg.inference.ensemble import ConfigurationEnsemble

    loaded = []
    for name in names:
        prefix = f"{name}/"
        own = {k.removeprefix(prefix): v for k, v in files.items() if k.startswith(prefix)}
        if "model.json" not in own:
            raise PackageError(f"{path}: ensemble member {name}: {prefix}model.json is missing")
        loaded.append(_read_model(path, own, device))
    try:
        return ConfigurationEnsemble(loaded, names)
    except CheckpointError as err:
        raise PackageError(f"{path}: {err}") from None


def _read_model(path: Path, files: dict[str, bytes], device) -> LoadedModel:
    from safetensors.torch import load

    model = model_spec(path, files)
    hparams = model["hparams"]
    folds = []
    for fold in model["folds"]:
        try:
            weights = load(files[fold["weights"]])
        except Exception as err:  # safetensors raises its own error type for any damage
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise PackageError(
                f"{path}: {fold['weights']} is not a safetensors file ({first})"
            ) from None
        folds.append(
            build_model(
                path, hparams, fold["architecture"], weights, model["preprocessing"], device
            )
        )
    return ensemble([path] * len(folds), folds, device)


def _json_object(path: Path, files: dict[str, bytes], name: str) -> dict:
    try:
        value = json.loads(files[name])
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PackageError(f"{path}: {name}: not JSON ({err})") from None
    if not isinstance(value, dict):
        raise PackageError(f"{path}: {name}: not an object but a {type(value).__name__}")
    return value


def model_spec(path: Path, files: dict[str, bytes]) -> dict:
    """``model.json`` of a verified package, its structure checked: what
    :func:`read_package` reads must be there with the right types, each fold's weights
    must be a file of the package, and the classes and channels must agree.

    Raises:
        PackageError: naming the package, ``model.json`` and the key.
    """

    def bad(what: str) -> PackageError:
        return PackageError(f"{path}: model.json: {what}")

    model = _json_object(path, files, "model.json")
    for key, kind in (("hparams", dict), ("folds", list), ("preprocessing", dict)):
        if not isinstance(model.get(key), kind):
            raise bad(f"'{key}' missing or not a{'n object' if kind is dict else ' list'}")
    hp = model["hparams"]
    if not isinstance(hp.get("arch"), str):
        raise bad("'hparams.arch' missing or not a name")
    if hp.get("spatial_dims") not in (2, 3):
        raise bad(f"'hparams.spatial_dims' must be 2 or 3, got {hp.get('spatial_dims')!r}")
    for key in ("in_channels", "classes"):
        if not isinstance(hp.get(key), int) or isinstance(hp.get(key), bool) or hp[key] < 1:
            raise bad(f"'hparams.{key}' must be a positive whole number, got {hp.get(key)!r}")
    if not model["folds"]:
        raise bad("'folds' is empty")
    for k, fold in enumerate(model["folds"]):
        if not isinstance(fold, dict) or not isinstance(fold.get("architecture"), dict):
            raise bad(f"fold {k} has no 'architecture' object")
        weights = fold.get("weights")
        if not isinstance(weights, str) or weights not in files:
            raise bad(f"fold {k} names weights {fold.get('weights')!r}, not a file of the package")
        for key in ("in_channels", "classes", "spatial_dims"):
            if key in fold["architecture"] and fold["architecture"][key] != hp[key]:
                raise bad(
                    f"fold {k}'s architecture has {key} {fold['architecture'][key]!r}, "
                    f"hparams {hp[key]!r}"
                )
    return model


def read_card(path: str | Path) -> str:
    """The model card of a package, as Markdown, with the sha256 of each of its files
    (verified first; the card cannot carry its own, so they are added from the manifest)."""
    files = read_verified(path)
    rows = [f"| `{name}` | {len(data):,} | `{hashlib.sha256(data).hexdigest()}` |"
            for name, data in files.items()]  # fmt: skip
    table = ["## Files (all verified)", "", "| file | bytes | sha256 |", "|---|---:|---|", *rows]
    return files["card.md"].decode().rstrip("\n") + "\n\n" + "\n".join(table) + "\n"


def read_verified(path: str | Path) -> dict[str, bytes]:
    """Every file of a package by name, after checking the format version and sha256s.

    Raises:
        PackageError: the package is missing, not one, newer than this scseg reads, or a
            file in it is missing, extra or changed.
    """
    path = Path(path)
    if not path.is_file():
        raise PackageError(f"{path}: package not found")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if MANIFEST not in names:
                raise PackageError(f"{path}: not an scseg package (no {MANIFEST})")
            manifest = json.loads(archive.read(MANIFEST))
            _check_version(path, manifest)
            listed = manifest.get("files") or {}
            if not isinstance(listed, dict) or not all(isinstance(v, str) for v in listed.values()):
                raise PackageError(f"{path}: {MANIFEST}: 'files' must map each name to a sha256")
            for name in listed:
                if name not in names:
                    raise PackageError(f"{path}: {name} is missing from the package")
            for name in names:
                if name != MANIFEST and name not in listed:
                    raise PackageError(f"{path}: {name} is not listed in {MANIFEST}")
            files = {name: archive.read(name) for name in listed}
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise PackageError(f"{path}: damaged package ({first})") from None
    for name, digest in listed.items():
        if hashlib.sha256(files[name]).hexdigest() != digest:
            raise PackageError(f"{path}: {name} does not match its sha256 (changed or damaged)")
    for name in ("model.json", "card.json", "card.md"):
        if name not in files:
            raise PackageError(f"{path}: {name} is missing from the package")
    return files


def _check_version(path: Path, manifest: dict) -> None:
    if not isinstance(manifest, dict):
        raise PackageError(f"{path}: {MANIFEST} is not an scseg package manifest")
    version = manifest.get("format_version")
    if manifest.get("format") != "scseg-package" or not isinstance(version, int):
        raise PackageError(f"{path}: {MANIFEST} is not an scseg package manifest")
    if version > ENSEMBLE_VERSION:
        raise PackageError(
            f"{path}: package format {version} is newer than this scseg "
            f"({__version__}) reads ({ENSEMBLE_VERSION}): upgrade scseg"
        )


def _safetensors(weights: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous() for k, v in weights.items()})


def _json_bytes(value: dict) -> bytes:
    return (json.dumps(value, indent=2, default=_plain) + "\n").encode()


def _plain(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def _model_json(paths: list[Path], parts: list[CheckpointParts]) -> dict:
    first = parts[0]
    hp = {k: v for k, v in first.hparams.items() if not k.startswith("_")}
    info = first.data_info
    classes = int(hp["classes"])
    names = info.get("class_names") or [f"class_{i}" for i in range(classes)]
    return {
        "arch": hp["arch"],
        "spatial_dims": hp["spatial_dims"],
        "in_channels": hp["in_channels"],
        "classes": [
            {"index": i, "name": name, "colour": colour}
            for i, (name, colour) in enumerate(zip(names, class_colours(classes), strict=True))
        ],
        "preprocessing": {
            **info,
            "orientation": ORIENTATION if info.get("spacing") is not None else None,
        },
        "hparams": hp,
        "folds": [
            {
                "weights": f"weights/fold_{k}.safetensors",
                "checkpoint": p.name,
                "architecture": part.architecture,
            }
            for k, (p, part) in enumerate(zip(paths, parts, strict=True))
        ],
    }


def _card_json(
    name: str, paths: list[Path], parts: list[CheckpointParts], description: str | None
) -> dict:
    first = parts[0]
    data = first.raw.get("datamodule_hyper_parameters") or {}
    return {
        "name": name,
        "description": description,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "scseg_package": __version__,
            "scseg_trained": first.extra.get("version"),
            "torch": torch.__version__,
        },
        "training_data": {
            "data_module": first.extra.get("data_module"),
            "settings": {k: v for k, v in dict(data).items() if not k.startswith("_")},
        },
        "validation": [
            _fold_scores(k, p, part) for k, (p, part) in enumerate(zip(paths, parts, strict=True))
        ],
    }


def _fold_scores(fold: int, path: Path, parts: CheckpointParts) -> dict:
    """A fold's validation scores and the epoch and step they come from; none where the
    checkpoint holds no validation of the run (older checkpoints' unmarked scores may be
    Lightning's sanity check of the untrained network)."""
    scores = parts.extra.get("scores") or {}
    validated = bool(scores.get("validated"))
    return {
        "fold": fold,
        "checkpoint": path.name,
        "epoch": parts.raw.get("epoch"),
        "global_step": parts.raw.get("global_step"),
        "scores_epoch": scores.get("epoch") if validated else None,
        "scores_step": scores.get("global_step") if validated else None,
        "per_class": list(scores.get("val") or []) if validated else [],
    }
