"""Cross-validation that chooses the configuration, after nnU-Net's
``nnUNetv2_find_best_configuration``: every configuration trained on every fold, each fold's
held-out cases predicted with their probabilities kept, the ensemble of each pair of
configurations made from those, all scored with ``scseg evaluate``'s code, and the best
packed.

Everything lands under one folder, and a rerun resumes: a fold trained to the end is
kept (``trained.json`` beside its checkpoints), one stopped part-way resumes from its last
checkpoint, predictions already written are kept.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from scseg.selection.configurations import Configuration, SelectionError, case_files, folds

FINISHED = "trained.json"  # written beside a fold's checkpoints when its fit has ended


@dataclass
class Candidate:
    """A configuration or an ensemble of them, and its cross-validation scores."""

    name: str
    members: list[str]
    predictions: Path
    dice: dict[str, float] = field(default_factory=dict)  # per class, over every case

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.dice.values())))


def fold_dir(out: Path, configuration: Configuration, fold: int) -> Path:
    return out / configuration.name / f"fold_{fold}"


def last_checkpoint(out: Path, configuration: Configuration, fold: int) -> Path:
    """The fold's last checkpoint, the one that predicts and is packed (nnU-Net's final)."""
    return fold_dir(out, configuration, fold) / "checkpoints" / "last.ckpt"


def train_fold(
    out: Path,
    configuration: Configuration,
    fold: int,
    fit_args: list[str],
    say: Callable[[str], None],
) -> Path:
    """``scseg fit`` of one fold in a process of its own (its log in the fold's folder);
    kept where it finished before, resumed from ``last.ckpt`` where it stopped part-way.
    Returns the fold's last checkpoint.

    Raises:
        SelectionError: the fit failed, with the last line it wrote and its log.
    """
    folder = fold_dir(out, configuration, fold)
    last = last_checkpoint(out, configuration, fold)
    what = f"{configuration.name} fold {fold}"
    if (folder / FINISHED).is_file() and last.is_file():
        say(f"{what}: trained, kept")
        return last
    resume = last.is_file()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "fit.log"
    command = [sys.executable, "-m", "scseg.cli", "fit", "--config", str(configuration.config),
               "--data.init_args.fold", str(fold),
               "--trainer.default_root_dir", str(out / configuration.name), *fit_args,
               *(["--ckpt_path", "last"] if resume else [])]  # fmt: skip
    say(f"{what}: {'resuming' if resume else 'training'} (log: {log})")
    start = time.perf_counter()
    with open(log, "a") as sink:
        done = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0 or not last.is_file():
        lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
        raise SelectionError(f"{what}: scseg fit failed (exit {done.returncode}): "
                             f"{lines[-1] if lines else 'no output'}; log: {log}")  # fmt: skip
    seconds = time.perf_counter() - start
    (folder / FINISHED).write_text(json.dumps({"seconds": round(seconds, 1),
                                               "fit_args": fit_args}) + "\n")  # fmt: skip
    say(f"{what}: trained in {seconds / 60:.1f} min")
    return last


def predict_fold(
    out: Path,
    configuration: Configuration,
    fold: int,
    cases: list[str],
    sources: dict,
    tta: bool,
    say: Callable[[str], None],
) -> Path:
    """The fold's held-out cases predicted by its last checkpoint, labels and
    probabilities (on each input's grid), into ``<out>/<name>/predictions``; cases
    predicted before are kept."""
    from scseg.inference import PredictOptions, load_models, predict_files

    predictions = out / configuration.name / "predictions"
    model = load_models(last_checkpoint(out, configuration, fold))
    options = PredictOptions(probabilities=True, tta=tta)
    summary = predict_files(model, [sources[c][0] for c in cases], predictions, options,
                            quiet=True)  # fmt: skip
    if summary.failures:
        _, message = summary.failures[0]
        raise SelectionError(f"{configuration.name} fold {fold}: {message}")
    say(f"{configuration.name} fold {fold}: {len(summary.done)} held-out case(s) predicted"
        + (f", {len(summary.kept)} kept" if summary.kept else ""))  # fmt: skip
    return predictions


def ensemble_predictions(
    members: list[Candidate], out: Path, names: list[str], multilabel: bool = False
) -> Path:
    """Each case's labels from the mean of the members' probabilities (regions: the mean
    above 0.5, as masks), into ``out``; written for every case, so it stays in step with
    the members' predictions."""
    from scseg.inference.argmax import label_dtype
    from scseg.inference.writing import atomic_write, image_like
    from scseg.io.label_tables import label_table

    out.mkdir(parents=True, exist_ok=True)
    first = members[0].predictions
    for probs in sorted(first.glob("*_probabilities.*")):
        case = probs.name.split("_probabilities.")[0]
        if probs.suffix == ".npy":  # 2D: (C, H, W)
            from PIL import Image

            mean = np.mean([np.load(m.predictions / probs.name) for m in members], 0)
            labels = mean.argmax(0).astype(label_dtype(mean.shape[0]))
            atomic_write(out / f"{case}.png", lambda t, a=labels: Image.fromarray(a).save(t),
                         overwrite=True)  # fmt: skip
            continue
        images = [nib.load(m.predictions / probs.name) for m in members]
        mean = np.mean([np.asarray(i.dataobj, np.float32) for i in images], 0)
        head = nib.load(first / f"{case}.nii.gz")
        if multilabel:  # one mask per region, as scseg predict writes them
            labels = (mean > 0.5).astype(np.uint8)
        else:
            labels = mean.argmax(-1).astype(label_dtype(mean.shape[-1]))
        image = image_like(labels, head.affine, head.header, "label", int(labels.max()))
        atomic_write(out / f"{case}.nii.gz", lambda t, i=image: nib.save(i, t), overwrite=True)
        table = (first / f"{case}.tsv").read_text() if (first / f"{case}.tsv").is_file() else None
        (out / f"{case}.tsv").write_text(table or label_table(names))
    return out


def truth_folder(out: Path, sources: dict, cases: list[str]) -> Path:
    """``<out>/truth``: a link per case to its truth, named as its prediction is (the
    truth of a layout may be named otherwise), for ``scseg evaluate``'s pairing."""
    from scseg.inference.runner import source_name

    folder = out / "truth"
    folder.mkdir(parents=True, exist_ok=True)
    for case in cases:
        source, label = sources[case]
        suffix = ".nii.gz" if label.name.endswith(".nii.gz") else label.suffix
        link = folder / f"{source_name(source)}{suffix}"
        if not link.is_symlink():
            link.symlink_to(Path(label).resolve())
    return folder


def score(candidate: Candidate, truth: Path, names: list[str] | None, scheme) -> dict:
    """``scseg evaluate``'s mean Dice per class over every cross-validated case."""
    from scseg.evaluation import evaluate, summarise

    regions = scheme if scheme is not None and scheme.multilabel else None
    ignore = None if scheme is None else scheme.ignore
    rows, _, _ = evaluate(candidate.predictions, truth, None if regions else names, 1.0, None,
                          None, ignore, regions)  # fmt: skip
    return {e["name"]: float(e["dice"]) for e in summarise(rows) if e["cases"]}


def cross_validate(
    configurations: list[Configuration],
    out: Path,
    fit_args: list[str],
    tta: bool = False,
    say: Callable[[str], None] = print,
) -> list[Candidate]:
    """Trains, predicts and scores every configuration on every fold, and every pair of
    configurations as an ensemble; returns the candidates, best first."""
    from scseg.data.labels import label_scheme

    split = folds(configurations[0])
    meta, sources = case_files(configurations[0].root)
    cases = sorted({c for f in split for c in f["val"]})
    if unknown := sorted(set(cases) - set(sources)):
        raise SelectionError(f"{configurations[0].split_file}: cases not in "
                             f"{configurations[0].root}: {', '.join(unknown[:5])}")  # fmt: skip
    scheme = label_scheme(meta, str(configurations[0].root / "dataset.json")) if meta else None
    names = configurations[0].class_names
    candidates = []
    for configuration in configurations:
        for k in range(len(split)):
            train_fold(out, configuration, k, fit_args, say)
        for k, fold in enumerate(split):
            predictions = predict_fold(out, configuration, k, fold["val"], sources, tta, say)
        candidates.append(Candidate(configuration.name, [configuration.name], predictions))
    for pair in itertools.combinations(candidates[: len(configurations)], 2):
        name = "+".join(m.name for m in pair)
        multilabel = scheme is not None and scheme.multilabel
        folder = ensemble_predictions(list(pair), out / name / "predictions",
                                      names or [], multilabel)  # fmt: skip
        candidates.append(Candidate(name, [m.name for m in pair], folder))
    truth = truth_folder(out, sources, cases)
    for candidate in candidates:
        candidate.dice = score(candidate, truth, names, scheme)
    return sorted(candidates, key=lambda c: -c.mean)


def checkpoints(out: Path, configuration: Configuration, count: int) -> list[Path]:
    return [last_checkpoint(out, configuration, k) for k in range(count)]
