"""A trained 3D model as a MONAI bundle, for MONAI's bundle API, MONAI Label and MONAI
Deploy: no scseg needed to run it.

    OUT/configs/metadata.json   what MONAI's bundle tools read: versions, input and output
    OUT/configs/inference.json  MONAI transforms that repeat scseg's preprocessing (RAS,
                                spacing, intensity), a Gaussian sliding window, softmax,
                                inversion to the input grid, argmax, NIfTI out
    OUT/models/model.ts         the network, traced with TorchScript at the window size
    OUT/docs/README.md          the model card (from a package), or a short description

Run it with MONAI: ``monai.bundle.run(config_file="OUT/configs/inference.json",
bundle_root="OUT", dataset_dir=IN, output_dir=PRED)``, or ``python -m monai.bundle run``
with the same options (which needs ``fire``); MONAI's evaluator needs pytorch-ignite. The
network is TorchScript because that is what MONAI Deploy and MONAI Label load without the
code that defined it. The steps are MONAI's own versions of what ``scseg predict`` runs, so the
labels are the same (tested); scseg's extras stay behind (DICOM in and out, NRRD's
orientation conventions, snapping nearly orthonormal direction cosines, test-time
mirroring).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from scseg import __version__
from scseg.inference.checkpoint import LoadedModel
from scseg.inference.writing import _umask, refuse_existing


class BundleError(ValueError):
    """The model cannot be written as a MONAI bundle; the message names the output."""


BUNDLE_ENTRIES = frozenset({"configs", "models", "docs"})


def check_replaceable(out: Path, keep: tuple[Path, ...] = ()) -> None:
    """Raises unless ``out`` may be replaced by a new bundle: it must not exist, or be a
    folder that holds a bundle and nothing else (as :func:`write_bundle` leaves it). The
    working folder, its ancestors and any folder holding one of ``keep`` (the model's
    source) are never replaced, whatever it holds.

    Raises:
        BundleError: naming ``out`` and why it is kept.
    """
    resolved = out.resolve()
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents:
        raise BundleError(f"{out}: is the working folder or holds it; name a new folder")
    for source in keep:
        if resolved == source.resolve() or resolved in source.resolve().parents:
            raise BundleError(f"{out}: holds the model being exported ({source}); not replaced")
    if not out.exists():
        return
    entries = {p.name for p in out.iterdir()} if out.is_dir() else None
    if (
        entries is None
        or not entries <= BUNDLE_ENTRIES
        or not (out / "configs" / "inference.json").is_file()
    ):
        raise BundleError(
            f"{out}: exists and is not a MONAI bundle; --overwrite replaces only a bundle"
        )


def write_bundle(
    model: LoadedModel,
    out: str | Path,
    card: str | None = None,
    overwrite: bool = False,
    keep: tuple[Path, ...] = (),
) -> Path:
    """Writes ``model`` as a MONAI bundle folder ``out`` (whole or not at all). With
    ``overwrite`` a previous bundle at ``out`` is swapped for the new one: the new one is
    written beside it, the old one renamed aside, the new one renamed in, then the old one
    deleted; an error in between puts the old one back.

    Args:
        keep: paths (the model's source) that ``out`` must not hold.

    Raises:
        BundleError: a 2D model, no patch size, or ``out`` is not replaceable
            (:func:`check_replaceable`).
        OutputExistsError: ``out`` exists and ``overwrite`` is false.
    """
    refuse_existing([out], overwrite)
    check_replaceable(Path(out), keep)
    shown, out = out, Path(os.path.abspath(out))  # "." has no name to write beside
    if model.input_dims != 3 or model.spatial_dims != 3:
        raise BundleError(f"{shown}: a MONAI bundle is written for 3D models only; this one is 2D")
    info = model.data_info
    roi = info.get("patch_size")
    if not roi or len(roi) != 3:
        raise BundleError(f"{shown}: the model records no 3D patch size for the sliding window")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for sub in ("configs", "models", "docs"):
            (tmp / sub).mkdir()
        net = model.net.cpu().eval()
        with torch.no_grad():
            traced = torch.jit.trace(net, torch.zeros(1, model.in_channels, *roi))
        traced.save(str(tmp / "models" / "model.ts"))
        _dump(tmp / "configs" / "inference.json", inference_config(model))
        _dump(tmp / "configs" / "metadata.json", metadata(model))
        (tmp / "docs" / "README.md").write_text(card or _short_card(model))
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private
        _swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _swap_in(new: Path, out: Path) -> None:
    """Renames ``new`` to ``out``; a folder already at ``out`` is renamed aside first and
    deleted only once ``new`` is in place (restored if that rename fails)."""
    if not out.exists():
        new.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    old.rmdir()
    out.rename(old)
    try:
        new.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def preprocessing_config(info: dict) -> list[dict]:
    """scseg's :func:`scseg.data.volumes3d.preprocessing`, as MONAI config entries."""
    steps: list[dict] = [
        {"_target_": "LoadImaged", "keys": "image", "image_only": False},
        {"_target_": "EnsureChannelFirstd", "keys": "image"},
    ]
    scale: list[dict] = []
    intensity = info.get("intensity", "zscore")
    if intensity in ("zscore", "auto"):
        scale.append(
            {
                "_target_": "NormalizeIntensityd",
                "keys": "image",
                "nonzero": True,
                "channel_wise": True,
            }
        )
    elif intensity == "ct":
        lo, hi = info.get("ct_window", (-175.0, 250.0))
        scale.append(
            {
                "_target_": "ScaleIntensityRanged",
                "keys": "image",
                "a_min": lo,
                "a_max": hi,
                "b_min": 0.0,
                "b_max": 1.0,
                "clip": True,
            }
        )
    first = bool(info.get("intensity_first", False))  # the order the model trained with
    steps += scale if first else []
    steps.append({"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"})
    if info.get("spacing"):
        steps.append(
            {
                "_target_": "Spacingd",
                "keys": "image",
                "pixdim": list(info["spacing"]),
                "mode": "bilinear",
            }
        )
    steps += [] if first else scale
    steps.append({"_target_": "EnsureTyped", "keys": "image", "dtype": "$torch.float32"})
    return steps


def inference_config(model: LoadedModel, overlap: float = 0.5, sw_batch_size: int = 4) -> dict:
    """The bundle's ``inference.json``: every NIfTI file in ``dataset_dir`` segmented into
    ``output_dir`` as ``<name>_seg.nii.gz`` on its own grid."""
    # regions that overlap: a sigmoid per region and one mask each (a 4D file)
    multilabel = model.multilabel
    activation = {"sigmoid": True} if multilabel else {"softmax": True}
    decision = {"threshold": 0.5} if multilabel else {"argmax": True}
    return {
        "imports": ["$import glob", "$import os", "$import numpy", "$import torch"],
        "bundle_root": ".",
        "dataset_dir": "$@bundle_root + '/input'",
        "output_dir": "$@bundle_root + '/eval'",
        "datalist": "$list(sorted(glob.glob(os.path.join(@dataset_dir, '*.nii*'))))",
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "network_def": "$torch.jit.load(os.path.join(@bundle_root, 'models', 'model.ts'), "
        "map_location=@device)",
        "network": "$@network_def.eval()",
        "preprocessing": {
            "_target_": "Compose",
            "transforms": preprocessing_config(model.data_info),
        },
        "dataset": {
            "_target_": "Dataset",
            "data": "$[{'image': i} for i in @datalist]",
            "transform": "@preprocessing",
        },
        "dataloader": {
            "_target_": "DataLoader",
            "dataset": "@dataset",
            "batch_size": 1,
            "shuffle": False,
            "num_workers": 0,
        },
        "inferer": {
            "_target_": "SlidingWindowInferer",
            "roi_size": list(model.data_info["patch_size"]),
            "sw_batch_size": sw_batch_size,
            "overlap": overlap,
            "mode": "gaussian",
        },
        "postprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "Activationsd", "keys": "pred", **activation},
                {
                    "_target_": "Invertd",
                    "keys": "pred",
                    "transform": "@preprocessing",
                    "orig_keys": "image",
                    "nearest_interp": False,
                    "to_tensor": True,
                },
                {"_target_": "AsDiscreted", "keys": "pred", **decision},
                {
                    "_target_": "SaveImaged",
                    "keys": "pred",
                    "output_dir": "@output_dir",
                    "output_postfix": "seg",
                    "output_dtype": "$numpy.uint8" if model.classes <= 255 else "$numpy.int16",
                    "resample": False,
                    "separate_folder": False,
                    "print_log": False,
                },
            ],
        },
        "evaluator": {
            "_target_": "SupervisedEvaluator",
            "device": "@device",
            "val_data_loader": "@dataloader",
            "network": "@network",
            "inferer": "@inferer",
            "postprocessing": "@postprocessing",
            "amp": False,
        },
        "initialize": ["$monai.utils.set_determinism(0)"],
        "run": ["$@evaluator.run()"],
    }


def metadata(model: LoadedModel) -> dict:
    """The bundle's ``metadata.json`` (MONAI's bundle metadata fields)."""
    import monai

    names = model.class_names
    patch = list(model.data_info["patch_size"])
    return {
        "version": "0.1.0",
        "changelog": {"0.1.0": f"exported by scseg {__version__}"},
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": np.__version__,
        "required_packages_version": {
            "nibabel": _version("nibabel"),
            "pytorch-ignite": _version("pytorch-ignite"),
        },
        "task": "segmentation",
        "description": f"{model.hparams.get('arch')} with {model.hparams.get('attention')} "
        f"recalibration, {model.classes} classes: {', '.join(names[1:6])}"
        + (", ..." if len(names) > 6 else ""),
        "authors": "scseg",
        "copyright": "see the training data's licence",
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "num_channels": model.in_channels,
                    "spatial_shape": patch,
                    "dtype": "float32",
                    "value_range": [],
                    "is_patch_data": True,
                    "channel_def": {str(i): "image" for i in range(model.in_channels)},
                }
            },
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "segmentation",
                    "num_channels": model.classes,
                    "spatial_shape": patch,
                    "dtype": "float32",
                    "value_range": [],
                    "is_patch_data": True,
                    "channel_def": {str(i): n for i, n in enumerate(names)},
                }
            },
        },
    }


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _short_card(model: LoadedModel) -> str:
    info = model.data_info
    return (
        f"# scseg model\n\n{model.hparams.get('arch')}, {model.classes} classes: "
        f"{', '.join(model.class_names)}.\n\nPreprocessing: RAS, spacing "
        f"{info.get('spacing')}, intensity {info.get('intensity')}.\n"
    )


def _dump(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")
