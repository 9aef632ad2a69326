"""Does ``scseg cross-validate`` choose well? On the brain tissue blocks, the choice made
from the training cases' folds alone, scored on the two blocks held out from everything.

1. ``scseg data own_scans``: eight blocks of the ICBM T1; the two that the head-to-head
   with nnU-Net holds out (``scseg plan``'s seeded split, seed 0) are held out here too,
   and the other six form the dataset that is planned and cross-validated.
2. ``scseg plan --spacing 2 2 2 --folds 3``: the 3D and the slice-wise config, one split.
3. ``scseg cross-validate --tta`` with each fold trained for as many steps as the
   head-to-head's standard budget (432); every configuration and the ensemble scored on
   the folds, the best chosen.
4. Each candidate's package (its three folds; the ensemble's: both configurations) predicts
   the held-out blocks (``scseg predict --tta``), scored by ``scseg evaluate``; beside them
   the two-threshold Otsu that needs no learning.

    uv run python benchmarks/cross_validate.py [--steps 432]

Results: ``benchmarks/results/cross_validate.{json,md}``; runs in ``runs/cross_validate``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import yaml
from common import write
from nnunet.environment import sh
from nnunet.pipelines import baseline, evaluate, steps_per_epoch
from nnunet.settings import REPO, RESULTS, SCSEG

RUNS = REPO / "runs" / "cross_validate"


def datasets(folder: Path) -> tuple[Path, list[str], Path]:
    """``(training dataset, held-out cases, the whole dataset)``: the six training blocks
    as a dataset of their own (links), the held-out two named."""
    from scseg.planning.split import make_split

    if not (folder / "own_scans").is_dir():
        sh([*SCSEG, "data", "own_scans", "--out", folder], log=folder / "data.log")
    whole = folder / "own_scans"
    cases = sorted(p.name.removesuffix(".nii.gz") for p in (whole / "imagesTr").iterdir())
    held_out = make_split(cases, seed=0)["val"]  # as the head-to-head's plan splits them
    train = folder / "train"
    for sub in ("imagesTr", "labelsTr"):
        (train / sub).mkdir(parents=True, exist_ok=True)
        for case in cases:
            link = train / sub / f"{case}.nii.gz"
            if case not in held_out and not link.exists():
                link.symlink_to((whole / sub / f"{case}.nii.gz").resolve())
    return train, held_out, whole


def predict_held_out(package: Path, whole: Path, held_out: list[str], out: Path) -> float:
    images = out.parent / "held_out_images"
    images.mkdir(parents=True, exist_ok=True)
    for case in held_out:
        link = images / f"{case}.nii.gz"
        if not link.exists():
            link.symlink_to((whole / "imagesTr" / f"{case}.nii.gz").resolve())
    shutil.rmtree(out, ignore_errors=True)
    return sh([*SCSEG, "predict", "--model", package, "--input", images, "--output", out,
               "--tta", "--quiet"], log=out.parent / f"{out.name}.log")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=432, help="training steps of each fold")
    parser.add_argument("--report", action="store_true", help="rewrite the table from the JSON")
    args = parser.parse_args()
    folder = RUNS / f"tissue_steps{args.steps}"
    if args.report:
        (result,) = json.loads((RESULTS / "cross_validate.json").read_text())["rows"]
        result.setdefault("fold_steps", fold_steps(folder / "cv"))
        write("cross_validate", [result], report(result), {"steps": result["steps"]})
        return
    folder.mkdir(parents=True, exist_ok=True)
    train, held_out, whole = datasets(folder)
    plan = folder / "plan.yaml"
    if not plan.exists():
        sh([*SCSEG, "plan", "--data", train, "--out", plan, "--spacing", "2", "2", "2",
            "--folds", "3", "--device", "cpu"], log=folder / "plan.log")  # fmt: skip
    configs = {"3d": plan, "2d": plan.with_name("plan_2d.yaml")}
    split = json.loads((folder / "plan_split.json").read_text())
    epochs = {}
    for name, config in configs.items():
        values = yaml.safe_load(config.read_text())
        values["data"]["init_args"]["fold"] = 0  # a fold's training cases
        per_epoch = steps_per_epoch(values, split["folds"][0])
        epochs[name] = math.ceil(args.steps / per_epoch)
    # one fit setting for both: each config's epochs written into a copy of its own
    for name, config in configs.items():
        values = yaml.safe_load(config.read_text())
        values["trainer"]["max_epochs"] = epochs[name]
        values["trainer"]["check_val_every_n_epoch"] = epochs[name]
        config.write_text(f"# {name}: {epochs[name]} epochs for ~{args.steps} steps\n"
                          + yaml.safe_dump(values, sort_keys=False))  # fmt: skip
    cv = folder / "cv"
    seconds = sh([*SCSEG, "cross-validate", "--plan", plan, "--out", cv, "--tta"],
                 log=folder / "cross_validate.log")  # fmt: skip
    chosen = json.loads((cv / "cross_validation.json").read_text())
    packages = {"3d": cv / "3d_all.scseg", "2d": cv / "2d_all.scseg"}
    for name, package in packages.items():
        folds = [cv / name / f"fold_{k}" / "checkpoints" / "last.ckpt"
                 for k in range(len(split["folds"]))]  # fmt: skip
        sh([*SCSEG, "package", "--checkpoint", *folds, "--out", package, "--overwrite"],
           log=folder / f"package_{name}.log")  # fmt: skip
    sh([*SCSEG, "cross-validate", "--plan", plan, "--out", cv, "--tta", "--choose", "3d+2d"],
       log=folder / "cross_validate_ensemble.log")  # fmt: skip
    packages["3d+2d"] = cv / "3d_2d.scseg"
    # the choice's package again (the ensemble's run above wrote the user's choice)
    sh([*SCSEG, "cross-validate", "--plan", plan, "--out", cv, "--tta"],
       log=folder / "cross_validate_again.log")  # fmt: skip
    held = {"train": split["train"] + split["val"], "val": held_out}
    split_file = folder / "held_out_split.json"
    split_file.write_text(json.dumps(held))
    config = yaml.safe_load(plan.read_text())
    rows = {}
    for name, package in packages.items():
        out = folder / f"held_out_{name.replace('+', '_')}"
        predict_s = predict_held_out(package, whole, held_out, out)
        rows[name] = {"held_out": evaluate(out, whole, config, split_file), "predict_s": predict_s}
    what = baseline("tissue", whole, held, folder / "baseline")
    rows["baseline"] = {"held_out": evaluate(folder / "baseline", whole, config, split_file),
                        "what": what}  # fmt: skip
    result = {"steps": args.steps, "epochs": epochs, "held_out": held_out,
              "cross_validate_s": seconds, "cross_validation": chosen, "rows": rows,
              "fold_steps": fold_steps(cv)}  # fmt: skip
    write("cross_validate", [result], report(result), {"steps": args.steps})


def fold_steps(cv: Path) -> dict[str, list[int]]:
    """The steps each fold of each configuration trained (its last checkpoint's)."""
    import torch

    found = {}
    for name in ("3d", "2d"):
        found[name] = [
            torch.load(p, map_location="cpu", weights_only=True)["global_step"]
            for p in sorted((cv / name).glob("fold_*/checkpoints/last.ckpt"))
        ]
    return found


def report(result: dict) -> str:
    cv = {c["name"]: c for c in result["cross_validation"]["candidates"]}
    classes = list(next(iter(cv.values()))["dice"])
    steps = result.get("fold_steps", {})
    trained = "; ".join(f"{n}: {s[0]} steps a fold" for n, s in steps.items() if s)
    held = {n: sum(r["held_out"][c]["dice"] for c in classes) / len(classes)
            for n, r in result["rows"].items()}  # fmt: skip
    chosen = result["cross_validation"]["chosen"]
    single = max(("3d", "2d"), key=held.get)
    lines = [
        f"# Cross-validation chooses the configuration: tissue blocks, ~{result['steps']} steps "
        "a fold",
        "",
        "The six training blocks of `scseg data own_scans` cross-validated on 3 folds at 2 mm "
        f"({trained}; each fold trains on 4 blocks), held out from all of it: "
        f"{', '.join(result['held_out'])} (the head-to-head's held-out blocks). class_1 is "
        "grey matter, class_2 white matter. Every package predicts the held-out blocks with "
        "all its folds and `--tta`; one run, one seed.",
        "",
        f"Chosen from the folds alone: **{chosen}**, held-out mean Dice {held[chosen]:.4f}; "
        f"the best single configuration on the held-out blocks, {single}: {held[single]:.4f} "
        f"({100 * (held[chosen] - held[single]):+.2f} points).",
        "",
        "| configuration | cross-validation mean Dice | held-out "
        + " | held-out ".join(classes)
        + " | held-out mean |",
        "|---|---:|" + "---:|" * (len(classes) + 1),
    ]
    for name, row in result["rows"].items():
        scores = row["held_out"]
        mean = sum(scores[c]["dice"] for c in classes) / len(classes)
        cv_mean = f"{cv[name]['mean_dice']:.4f}" if name in cv else "-"
        label = row.get("what", name)
        lines.append(f"| {label} | {cv_mean} | "
                     + " | ".join(f"{scores[c]['dice']:.4f}" for c in classes)
                     + f" | {mean:.4f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
