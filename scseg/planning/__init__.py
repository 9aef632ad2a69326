"""``scseg plan``: from a folder of cases to a training config, after nnU-Net's planner.

:func:`plan_dataset` fingerprints the dataset (:mod:`.fingerprint`), splits it
(:mod:`.split`), chooses the settings (:mod:`.rules`, :mod:`.choices`) and writes the
config with the reason for each choice (:mod:`.config`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from scseg.data.labels import check_region_values
from scseg.planning.choices import nnunet_schedule, plan
from scseg.planning.fingerprint import Fingerprint, fingerprint
from scseg.planning.rules import Plan
from scseg.planning.split import make_split, subjects

__all__ = ["PlannedRun", "plan_dataset", "slicewise_config", "summary_tables"]


@dataclass
class PlannedRun:
    config: Path
    split_file: Path
    fingerprint: Fingerprint
    plan: Plan
    split: dict
    subjects: int = 0
    configs: list[tuple[Path, Plan]] = field(default_factory=list)  # every config written


class PlanWarning(UserWarning):
    """Something in the dataset the plan keeps, but the user should know."""


def check_classes(fp: Fingerprint) -> None:
    """Label values must be 0..N-1, and named in ``dataset.json`` when it names classes;
    a named class that no label map holds is kept, with a :class:`PlanWarning`.

    Raises:
        ValueError: naming a case that holds the value.
    """
    present = sorted({v for c in fp.cases for v in c.counts})
    scheme = fp.scheme
    if scheme is not None and scheme.multilabel:
        if not scheme.masks:
            check_region_values(scheme, set(present), str(fp.root / "dataset.json"))
        return
    if scheme is not None:  # sparse: the ignore value is not a class
        present = [v for v in present if v != scheme.ignore]
        if present[-1] >= scheme.channels:
            case = next(c.name for c in fp.cases if present[-1] in c.counts)
            raise ValueError(
                f"{fp.root}: case {case} holds label value {present[-1]}, but dataset.json "
                f"names {scheme.channels} classes and ignore = {scheme.ignore}"
            )
    declared = fp.declared if scheme is None else None
    if declared:
        named = len(declared)
        if present[-1] >= named:
            case = next(c.name for c in fp.cases if max(c.counts) >= named)
            raise ValueError(
                f"{fp.root}: case {case} holds label value {present[-1]}, but "
                f"dataset.json names {named} classes (0..{named - 1})"
            )
    names = declared or (list(scheme.names) if scheme is not None else None)
    if names and (unseen := sorted(set(range(len(names))) - set(present))):
        shown = ", ".join(f"{names[v]} ({v})" for v in unseen[:5])
        warnings.warn(
            f"{fp.root / 'dataset.json'}: names class(es) that no label map holds: {shown}; "
            "planned as declared, but the network never sees them in training",
            PlanWarning,
            stacklevel=2,
        )
    elif gaps := sorted(set(range(present[-1] + 1)) - set(present)):
        case = next(c.name for c in fp.cases if max(c.counts) == present[-1])
        raise ValueError(
            f"{fp.root}: label values {present} skip {gaps[:5]} (e.g. {case} holds "
            f"{present[-1]}); classes must be numbered 0..N-1"
        )
    if present == [0]:
        raise ValueError(f"{fp.root}: every label map is background only (0); nothing to learn")


def default_memory() -> tuple[float, float, bool]:
    """``(GiB for training, GiB of RAM for cached data, CPU)``: the first GPU's memory, or
    8 GiB (nnU-Net's reference) on a CPU; half of this machine's RAM."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_properties(0).total_memory / 2**30
            return round(gpu, 1), round(ram / 2, 1), False
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return 8.0, round(ram / 2, 1), True


def plan_dataset(
    data: str | Path,
    out: str | Path,
    memory: float | None = None,
    ram: float | None = None,
    folds: int = 0,
    dims: int | None = None,
    seed: int = 0,
    epochs: int = 100,
    spacing: list[float] | None = None,
    subject_pattern: str | None = None,
    cpu: bool | None = None,
    overwrite: bool = False,
    schedule: str = "scseg",
) -> PlannedRun:
    """Fingerprints ``data``, writes ``out`` (the config) and ``<out stem>_split.json``.

    Raises:
        OutputExistsError: if either exists and not ``overwrite`` (checked first).
        DataValidationError, ValueError, FileNotFoundError: bad data, naming the cases.
    """
    from scseg.inference.writing import refuse_existing
    from scseg.planning.config import write_config
    from scseg.planning.split import write_split

    data, out = Path(data), Path(out)
    split_path = out.with_name(f"{out.stem}_split.json")
    slicewise = slicewise_config(out)
    refuse_existing([out, split_path], overwrite)
    if dims not in (None, 2, 3):
        raise ValueError(f"--dims must be 2 or 3, got {dims}")
    found_memory, found_ram, found_cpu = default_memory()
    memory = memory or found_memory
    ram = ram or found_ram
    cpu = found_cpu if cpu is None else cpu
    fp = fingerprint(data, seed)
    check_classes(fp)
    given = None
    if (data / "split.json").is_file():
        from scseg.data.base import read_split

        given = read_split(data, "split.json")
        if unknown := sorted(set(given["train"] + given["val"]) - {c.name for c in fp.cases}):
            raise ValueError(f"{data / 'split.json'}: unknown cases {unknown[:5]}")
    names = [c.name for c in fp.cases]
    split = make_split(names, seed, folds, subject_pattern, given=given)
    n_train = len(split["folds"][0]["train"]) if folds else len(split["train"])
    # volumes with no --dims: the 3D plan and the slice-wise one, as nnU-Net's 3d_fullres
    # and 2d, sharing the split, for scseg cross-validate to choose between
    both = dims is None and fp.spatial_dims == 3
    if both:
        refuse_existing([slicewise], overwrite)
    planned = []
    for this_dims, path in [(dims, out), *([(2, slicewise)] if both else [])]:
        p = plan(fp, memory, ram, cpu, this_dims, epochs, spacing, n_train)
        text = _config_text(p, path, data, split_path, given, folds, schedule, len(names))
        planned.append((path, p, text))
    write_split(split, split_path, overwrite)
    for path, _, text in planned:
        write_config(text, path, overwrite)
    return PlannedRun(out, split_path, fp, planned[0][1], split,
                      len(subjects(names, subject_pattern)),
                      [(path, p) for path, p, _ in planned])  # fmt: skip


def slicewise_config(config: str | Path) -> Path:
    """Where ``scseg plan`` writes the slice-wise config of volumes beside ``config``."""
    config = Path(config)
    return config.with_name(f"{config.stem}_2d{config.suffix}")


def _config_text(
    p: Plan,
    out: Path,
    data: Path,
    split_path: Path,
    given: dict | None,
    folds: int,
    schedule: str,
    cases: int,
) -> str:
    """The config of plan ``p`` as commented YAML, with its run folder and data set."""
    from scseg.planning.config import to_yaml

    if schedule == "nnunet":
        nnunet_schedule(p)
    elif schedule != "scseg":
        raise ValueError(f"--schedule must be scseg or nnunet, got {schedule!r}")
    p.set(
        "trainer.default_root_dir",
        f"runs/{out.stem}",
        "checkpoints and logs; with --data.init_args.fold K, in fold_K/ below it",
    )
    p.set("data.init_args.root", str(data))
    # relative where it sits inside the data folder (both move together), else absolute
    split_file, folder = split_path.resolve(), data.resolve()
    if split_file.is_relative_to(folder):
        split_file = split_file.relative_to(folder)
    p.set(
        "data.init_args.split_file",
        str(split_file),
        f"{'split.json kept' if given else 'seeded split'}"
        f"{f', and {folds} folds grouped by subject' if folds else ''}: {split_path}",
    )
    p.values = _ordered(p.values)
    header = [
        f"Planned by scseg plan on {date.today().isoformat()} from {data} ({cases} cases).",
        f"  scseg fit --config {out}" + (" --data.init_args.fold 0" if folds else ""),
        "Each choice says why; the rules follow nnU-Net's planner (scseg/planning/rules.py",
        "lists where ours differ).",
    ]
    return to_yaml(p, header)


def _ordered(values: dict) -> dict:
    order = (
        "seed_everything",
        "trainer.",
        "model.",
        "data.class_path",
        "data.init_args.root",
        "data.init_args.split_file",
        "data.",
    )
    return dict(
        sorted(
            values.items(),
            key=lambda kv: next(i for i, prefix in enumerate(order) if kv[0].startswith(prefix)),
        )
    )


def summary_tables(run: PlannedRun) -> list:
    """Two rich tables: the dataset (with each class's share and size) and the plan."""
    from rich.table import Table

    fp = run.fingerprint
    data = Table(title=f"dataset: {fp.root} ({len(fp.cases)} cases)")
    data.add_column("property")
    data.add_column("value")
    unit = "mm" if fp.layout == "msd" else "px"
    shapes, spacings = fp.shapes, fp.spacings

    def span(values: np.ndarray, fmt: str = "{:g}") -> str:
        med = " x ".join(fmt.format(v) for v in np.median(values, 0))
        lo = " x ".join(fmt.format(v) for v in values.min(0))
        hi = " x ".join(fmt.format(v) for v in values.max(0))
        return med if lo == hi else f"{med} (median; {lo} to {hi})"

    data.add_row("layout", "MSD (3D volumes)" if fp.layout == "msd" else "2D images and masks")
    data.add_row("channels", ", ".join(fp.modalities()))
    data.add_row("size (voxels)" if fp.layout == "msd" else "size (px)", span(shapes, "{:.0f}"))
    if fp.layout == "msd":
        data.add_row(f"spacing ({unit})", span(spacings, "{:.3g}"))
        med = np.median(spacings, 0)
        data.add_row("anisotropy", f"{med.max() / med.min():.2f} (coarsest / finest axis)")
    for channel, modality in enumerate(fp.modalities()):
        s = fp.intensity_stats(channel)
        data.add_row(
            f"foreground {modality} intensity",
            f"mean {s['mean']:.4g}, sd {s['std']:.4g}, 0.5-99.5 % "
            f"{s['p00_5']:.4g} to {s['p99_5']:.4g}",
        )
    classes = Table(title="classes")
    for column in ("value", "name", "share of voxels", "median size", "cases"):
        classes.add_column(column, justify="left" if column == "name" else "right")
    total = sum(sum(c.counts.values()) for c in fp.cases)
    size_unit = "mm³" if fp.layout == "msd" else "px"
    scheme = fp.scheme
    if scheme is not None and scheme.ignore is not None:
        total -= sum(c.counts.get(scheme.ignore, 0) for c in fp.cases)  # of annotated voxels
        data.add_row(
            "annotated",
            f"{100 * fp.annotated_share():.2f} % of voxels (label {scheme.ignore}: not "
            "annotated, left out of loss and scores)",
        )
    multilabel = scheme is not None and scheme.multilabel
    if multilabel:
        data.add_row("labels", f"{scheme.channels} regions that may overlap (sigmoid per region)")
    for value, name in enumerate(fp.class_names()):

        def voxels(case, value=value) -> int:
            return fp.region_voxels(case)[value] if multilabel else case.counts.get(value, 0)

        counts = [voxels(c) * float(np.prod(c.spacing)) for c in fp.cases]
        present = [n for n in counts if n]
        share = sum(voxels(c) for c in fp.cases) / total
        size = f"{np.median(present):,.0f} {size_unit}" if present else "-"
        classes.add_row(
            str(value), name, f"{100 * share:.2f} %", size, f"{len(present)} of {len(fp.cases)}"
        )
    plans = []
    for config, plan_of in run.configs or [(run.config, run.plan)]:
        planned = Table(title=f"plan: {config}")
        planned.add_column("setting")
        planned.add_column("value")
        for key, value in plan_of.summary:
            planned.add_row(key, value)
        split = run.split
        planned.add_row(
            "split",
            f"{len(split['train'])} train, {len(split['val'])} val"
            + (f"; {len(split['folds'])} folds" if "folds" in split else "")
            + f"; {run.subjects} subject(s)",
        )
        planned.add_row("epochs", str(plan_of.values["trainer.max_epochs"]))
        plans.append(planned)
    return [data, classes, *plans]
