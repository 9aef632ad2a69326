"""Each pipeline's steps on one dataset: scseg's ``plan`` -> ``fit`` -> ``predict`` and
nU-Net's ``plan_and_preprocess`` -> ``train`` -> ``predict`` through their command lines, the
baselines that need no learning, and ``scseg evaluate`` scoring them all."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import yaml
from simple_baselines import otsu, two_thresholds

from nnunet.environment import cuda, nnunet_run_env, sh
from nnunet.settings import DATASETS, RUNS, SCSEG, TRAINER, VARIANTS
from scseg.evaluation import METRICS, summarise


def run_base(name: str, dims: int) -> Path:
    """The runs' folder of one dataset, 3D or slice by slice."""
    return RUNS / (name if dims == 3 else f"{name}_2d")


def repeat_dir(base: Path, name: str, repeat: int, epochs: int | None = None) -> Path:
    """One repeat's runs; a budget other than the dataset's standard one (``epochs``) in a
    folder of its own, so that it never replaces the standard runs' models."""
    longer = epochs is not None and epochs != DATASETS[name]["epochs"]
    return base / (f"repeat{repeat}_epochs{epochs}" if longer else f"repeat{repeat}")


def nnunet_configuration(dims: int) -> str:
    """nnU-Net's configuration that a scseg plan of ``dims`` is compared with."""
    return "2d" if dims == 2 else "3d_fullres"


def prepare(
    name: str, folder: Path, variant: str | None = None, dims: int = 3
) -> tuple[Path, dict, dict]:
    """``(data folder, scseg config, split)``: the dataset and scseg's plan of it (with the
    variant's plan options and changes: ``scseg_<variant>.yaml``), 3D or slice by slice."""
    from scseg.data.samples import prepare_sample

    if name == "tissue":
        sh([*SCSEG, "data", "own_scans", "--out", folder], log=folder / "data.log")
        data = folder / "own_scans"
    elif name == "parcellation":
        data = prepare_sample("brain_parcellation3d", quiet=True, native=8)
    elif DATASETS[name].get("images"):
        data = prepare_sample("nuclei2d", quiet=True)
    else:
        data = prepare_sample("tumour3d", quiet=True)
    stem = f"scseg_{variant}" if variant else "scseg"
    config = folder / f"{stem}.yaml"
    extra, changes = VARIANTS[variant][1:] if variant else ([], {})
    if not config.exists():  # (re)planned: its split file too, the same seeded split
        volumes = [] if DATASETS[name].get("images") else ["--dims", dims]
        sh([*SCSEG, "plan", "--data", data, "--out", config, *DATASETS[name]["plan"], *extra,
            *volumes, "--overwrite"],
           log=folder / f"{stem}_plan.log")  # fmt: skip
        if changes:
            planned = yaml.safe_load(config.read_text())
            for key, value in changes.items():
                *path, last = key.split(".")
                node = planned
                for part in path:
                    node = node.setdefault(part, {})
                node[last] = value(planned) if callable(value) else value  # from the plan
            config.write_text(f"# {stem}: the plan with {changes}\n" + yaml.safe_dump(planned))
    split_file = folder / f"{stem}_split.json"
    split = json.loads(split_file.read_text())
    if held_out := DATASETS[name].get("held_out"):  # the plan's training cases, these held out
        split = {"train": split["train"], "val": held_out}
        split_file.write_text(json.dumps(split, indent=1))
    elif DATASETS[name].get("images"):  # the sample's own split: held-out tiles side by side
        split = json.loads((data / "split.json").read_text())
        split_file.write_text(json.dumps(split, indent=1))
    return data, yaml.safe_load(config.read_text()), split


def steps_per_epoch(config: dict, split: dict) -> int:
    """scseg's training steps per epoch. 3D: a batch of ``batch_size`` volumes per step, each
    volume listed ``repeats`` times (every volume gives ``samples_per_volume`` patches).
    Slice by slice: ``batch_size`` slices per step, every slice of the preprocessed training
    volumes ``repeats`` times (the data module's own count)."""
    args = config["data"]["init_args"]
    if config["data"]["class_path"].endswith("Folder2DDataModule"):  # images, repeated
        return math.ceil(args.get("repeats", 1) * len(split["train"]) / args["batch_size"])
    if config["model"].get("spatial_dims") == 2:
        from scseg.data import MSDSlicesDataModule

        module = MSDSlicesDataModule(**{**args, "num_workers": 0, "validate": False})
        module.setup("fit")
        return len(module.train_dataloader())
    return math.ceil(args.get("repeats", 1) * len(split["train"]) / args["batch_size"])


def patches_per_step(config: dict) -> int:
    """scseg's patches per step: ``batch_size`` slices, or (3D) ``batch_size`` volumes x
    ``samples_per_volume`` (the data module's default where the plan leaves it out)."""
    import inspect

    from scseg.data import MSD3DDataModule

    args = config["data"]["init_args"]
    if config["model"].get("spatial_dims") == 2:
        return args["batch_size"]
    default = inspect.signature(MSD3DDataModule).parameters["samples_per_volume"].default
    return args["batch_size"] * args.get("samples_per_volume", default)


def nnunet_raw(name: str, data: Path, config: dict, split: dict, env: dict) -> Path:
    """nnU-Net's raw dataset: the training cases, the held-out ones in ``imagesTs``."""
    raw = Path(env["nnUNet_raw"]) / f"Dataset{DATASETS[name]['id']}_{name}"
    if (raw / "dataset.json").exists():
        return raw
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (raw / sub).mkdir(parents=True, exist_ok=True)
    if DATASETS[name].get("images"):
        return _nnunet_raw_images(raw, data, config, split)
    for case in split["train"]:
        shutil.copy(data / "imagesTr" / f"{case}.nii.gz", raw / "imagesTr" / f"{case}_0000.nii.gz")
        shutil.copy(data / "labelsTr" / f"{case}.nii.gz", raw / "labelsTr" / f"{case}.nii.gz")
    for case in split["val"]:
        shutil.copy(data / "imagesTr" / f"{case}.nii.gz", raw / "imagesTs" / f"{case}_0000.nii.gz")
    names = config["data"]["init_args"]["class_names"]
    meta = {
        "channel_names": {"0": "MRI"},
        "labels": {n: i for i, n in enumerate(names)},
        "numTraining": len(split["train"]),
        "file_ending": ".nii.gz",
    }
    (raw / "dataset.json").write_text(json.dumps(meta, indent=1))
    return raw


def _nnunet_raw_images(raw: Path, data: Path, config: dict, split: dict) -> Path:
    """A 2D image folder in nnU-Net's raw layout: each TIFF tile as a 16-bit PNG (nnU-Net's
    ``NaturalImage2DIO``), its mask as it is."""
    import tifffile
    from PIL import Image

    for case in split["train"] + split["val"]:
        sub = "imagesTr" if case in split["train"] else "imagesTs"
        image = tifffile.imread(data / "images" / f"{case}.tif").astype(np.uint16)
        Image.fromarray(image).save(raw / sub / f"{case}_0000.png")
        if case in split["train"]:
            shutil.copy(data / "masks" / f"{case}.png", raw / "labelsTr" / f"{case}.png")
    names = config["data"]["init_args"]["class_names"]
    meta = {"channel_names": {"0": "fluorescence"}, "labels": {n: i for i, n in enumerate(names)},
            "numTraining": len(split["train"]), "file_ending": ".png"}  # fmt: skip
    (raw / "dataset.json").write_text(json.dumps(meta, indent=1))
    return raw


def baselines(name: str, data: Path, split: dict, base: Path) -> dict[str, Path]:
    """Label maps of the held-out cases that need no learning: ``{what they are: folder}``.
    For the parcellation, the training template registered to each subject (affine, and
    affine + demons; :mod:`scseg.atlas.registration`), its labels warped."""
    if name != "parcellation":
        return {baseline(name, data, split, base / "baseline"): base / "baseline"}
    from scseg.atlas.registration import register_labels

    (atlas,) = split["train"]
    found = {}
    for method, what in (("affine", "atlas registration, affine"),
                         ("deformable", "atlas registration, affine + demons")):  # fmt: skip
        out = base / f"baseline_{method}"
        for case in split["val"]:
            if not (out / f"{case}.nii.gz").exists():
                register_labels(data / "imagesTr" / f"{case}.nii.gz",
                                data / "imagesTr" / f"{atlas}.nii.gz",
                                data / "labelsTr" / f"{atlas}.nii.gz",
                                out / f"{case}.nii.gz", method)  # fmt: skip
        found[what] = out
    return found


def baseline(name: str, data: Path, split: dict, out: Path) -> str:
    """Label maps of the held-out cases that need no learning; returns what they are."""
    out.mkdir(parents=True, exist_ok=True)
    if DATASETS[name].get("images"):  # Otsu's threshold of each tile
        import tifffile
        from PIL import Image

        for case in split["val"]:
            image = tifffile.imread(data / "images" / f"{case}.tif").astype(np.float32)
            Image.fromarray((image > otsu(image.ravel())).astype(np.uint8)).save(
                out / f"{case}.png"
            )
        return "Otsu's threshold per tile"
    for case in split["val"]:
        img = nib.load(data / "imagesTr" / f"{case}.nii.gz")
        image = np.asarray(img.dataobj, np.float32)
        if name == "tissue":
            low, high = two_thresholds(image[image > 0])
            guess = np.where(image <= low, 0, np.where(image <= high, 1, 2))
        else:
            guess = np.zeros(image.shape)
        nib.save(nib.Nifti1Image(guess.astype(np.uint8), img.affine), out / f"{case}.nii.gz")
    return "two-threshold Otsu on intensity" if name == "tissue" else "majority class (background)"


def evaluate(prediction: Path, data: Path, config: dict, split_file: Path) -> dict:
    """``scseg evaluate``'s mean Dice, HD95 and NSD per class over the held-out cases."""
    scores = prediction.parent / f"{prediction.name}_scores.csv"
    names = config["data"]["init_args"]["class_names"]
    truth = data / "masks" if (data / "masks").is_dir() else data / "labelsTr"  # 2D images
    sh([*SCSEG, "evaluate", "--prediction", prediction, "--truth", truth,
        "--split", split_file, "--out", scores, "--classes", *names, "--overwrite"],
       log=prediction.parent / f"{prediction.name}_evaluate.log")  # fmt: skip
    with open(scores) as f:  # the CSV leaves a score that is NaN empty
        rows = [{**row, **{m: float(row[m] or "nan") for m in METRICS}}
                for row in csv.DictReader(f)]  # fmt: skip
    return {entry["name"]: {k: entry[k] for k in ("dice", "hd95", "nsd") if entry["cases"]}
            for entry in summarise(rows)}  # fmt: skip


def held_out_images(data: Path, split: dict, folder: Path) -> Path:
    """Links to the held-out cases' images (volumes, or a 2D folder's tiles) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tiles = (data / "images").is_dir()
    for case in split["val"]:
        source = data / "images" / f"{case}.tif" if tiles else data / "imagesTr" / f"{case}.nii.gz"
        link = folder / source.name
        if not link.exists():
            link.symlink_to(source.resolve())
    return folder


def run_scseg(folder: Path, config_file: Path, epochs: int, seed: int, images: Path) -> dict:
    """``scseg fit`` for ``epochs`` (validating once, at the end), ``scseg predict --tta``,
    in a fresh ``folder`` (Lightning would write ``last-v1.ckpt`` beside an earlier run's
    ``last.ckpt``, and the prediction would take the earlier one)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    fit = sh([*SCSEG, "fit", "--config", config_file, "--seed_everything", seed,
              "--trainer.max_epochs", epochs, "--trainer.check_val_every_n_epoch", epochs,
              "--trainer.default_root_dir", folder], log=folder / "fit.log")  # fmt: skip
    prediction = folder / "prediction"
    predict = scseg_predict(folder, images, prediction)
    return {"train_s": fit, "predict_s": predict, "prediction": prediction}


def scseg_predict(run: Path, images: Path, out: Path) -> float:
    """``scseg predict --tta`` of ``images`` into a fresh ``out`` with the last checkpoint of
    the run in ``run``; returns its wall time."""
    shutil.rmtree(out, ignore_errors=True)
    return sh([*SCSEG, "predict", "--checkpoint", run / "checkpoints" / "last.ckpt",
               "--input", images, "--output", out, "--tta", "--quiet"],
              log=out.parent / f"{out.name}.log")  # fmt: skip


def nnunet_plans(name: str, env: dict, raw: Path, configuration: str) -> dict:
    """nnU-Net's plan (once) and its preprocessing for ``configuration`` (once); returns
    ``{"plans": its name, "batch": patches per step}``."""
    ident, change = str(DATASETS[name]["id"]), DATASETS[name]["nnunet_plan"]
    plans = "nnUNetPlans_scsegBudget" if change else "nnUNetPlans"
    folder = Path(env["nnUNet_preprocessed"]) / raw.name
    if not (folder / f"{plans}.json").exists():
        sh(["nnUNetv2_plan_and_preprocess", "-d", ident, "-c", configuration, "-np", "2",
            "--verify_dataset_integrity"], env=env,
           log=raw.parent / f"{name}_plan.log")  # fmt: skip
        if change:
            sh(["nnUNetv2_plan_experiment", "-d", ident, *change, "-overwrite_plans_name", plans],
               env=env, log=raw.parent / f"{name}_plan2.log")  # fmt: skip
    if not (folder / f"{plans}_{configuration}").exists():
        sh(["nnUNetv2_preprocess", "-d", ident, "-plans_name", plans, "-c", configuration,
            "-np", "2"], env=env,
           log=raw.parent / f"{name}_preprocess_{configuration}.log")  # fmt: skip
    planned = json.loads((folder / f"{plans}.json").read_text())
    return {"plans": plans, "batch": planned["configurations"][configuration]["batch_size"]}


def run_nnunet(
    name: str, folder: Path, env: dict, epochs: int, iterations: int, raw: Path, dims: int = 3
) -> dict:
    """nnU-Net's plan (once), training for ``epochs`` x ``iterations`` and prediction, with
    its ``3d_fullres`` configuration or (``dims`` 2) its ``2d``."""
    ident, configuration = str(DATASETS[name]["id"]), nnunet_configuration(dims)
    planned = nnunet_plans(name, env, raw, configuration)
    folder.mkdir(parents=True, exist_ok=True)
    env = {**nnunet_run_env(name, env, folder, configuration), "SCSEG_NNUNET_EPOCHS": str(epochs),
           "SCSEG_NNUNET_ITERATIONS": str(iterations)}  # fmt: skip
    shutil.rmtree(folder / "results", ignore_errors=True)
    device = "cuda" if cuda() else "cpu"
    train = sh(["nnUNetv2_train", ident, configuration, "all", "-tr", TRAINER,
                "-p", planned["plans"], "-device", device], env=env,
               log=folder / "train.log")  # fmt: skip
    prediction = folder / "prediction"
    predict = nnunet_predict(name, env, raw / "imagesTs", prediction, planned["plans"], dims)
    return {"train_s": train, "predict_s": predict, "prediction": prediction,
            "batch": planned["batch"]}  # fmt: skip


def nnunet_predict(name: str, env: dict, images: Path, out: Path, plans: str, dims: int) -> float:
    """``nnUNetv2_predict`` of ``images`` into a fresh ``out`` with the final checkpoint of the
    run whose results ``env`` names; returns its wall time."""
    ident, configuration = str(DATASETS[name]["id"]), nnunet_configuration(dims)
    shutil.rmtree(out, ignore_errors=True)
    device = "cuda" if cuda() else "cpu"
    return sh(["nnUNetv2_predict", "-i", images, "-o", out, "-d", ident, "-c", configuration,
               "-f", "all", "-tr", TRAINER, "-p", plans, "-chk", "checkpoint_final.pth",
               "-device", device, "-npp", "1", "-nps", "1"],
              env=env, log=out.parent / f"{out.name}.log")  # fmt: skip
