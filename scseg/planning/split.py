"""Seeded train/validation splits and K folds, grouped by subject."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from pathlib import Path

# BIDS names carry the subject: sub-01_ses-2_T1w -> sub-01.
SUBJECT_PATTERN = r"(sub-[A-Za-z0-9]+)"


def subject_of(case: str, pattern: str | re.Pattern = SUBJECT_PATTERN) -> str | None:
    """The subject in a case name: the pattern's first group, or its whole match where it
    has no group; ``None`` where it does not match."""
    found = re.search(pattern, case)
    if found is None:
        return None
    return found.group(1) if found.groups() else found.group(0)


def subjects(cases: Sequence[str], pattern: str | None = None) -> dict[str, list[str]]:
    """The cases grouped by subject, in sorted order. ``pattern`` ``None``: BIDS
    ``sub-<label>``, where names carry it. A case the pattern does not match is a subject
    of its own.

    Raises:
        ValueError: a pattern that is not a regular expression, or (given explicitly) one
            that matches no case: grouping would silently be off.
    """
    try:
        compiled = re.compile(pattern or SUBJECT_PATTERN)
    except re.error as err:
        raise ValueError(
            f"--subject-pattern {pattern!r}: not a regular expression ({err})"
        ) from None
    groups: dict[str, list[str]] = {}
    matched = 0
    for case in sorted(cases):
        subject = subject_of(case, compiled)
        matched += subject is not None
        groups.setdefault(case if subject is None else subject, []).append(case)
    if pattern is not None and not matched:
        raise ValueError(
            f"--subject-pattern {pattern!r} matches none of the {len(cases)} case names "
            f"(e.g. {sorted(cases)[0]}): subjects cannot be grouped"
        )
    return groups


def make_split(
    cases: Sequence[str],
    seed: int = 0,
    folds: int = 0,
    pattern: str | None = None,
    val_share: float = 0.2,
    given: dict | None = None,
) -> dict:
    """``{"train", "val"[, "folds"]}``: a seeded share of the subjects validates, and with
    ``folds`` K each subject validates in exactly one of K folds. A subject's cases always
    stay together (:func:`subjects`). ``given``: an existing split whose train and val
    are kept.

    Raises:
        ValueError: fewer than two subjects (no split possible), or fewer than K; a
            pattern that matches no case.
    """
    groups = subjects(cases, pattern)
    if len(groups) < 2:
        what = "one case" if len(cases) == 1 else f"{len(cases)} cases of one subject"
        raise ValueError(
            f"{what}: no split possible (training and validation need a subject each); add cases"
        )
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    if given is not None:
        split = {"train": list(given["train"]), "val": list(given["val"])}
    else:
        n_val = min(len(order) - 1, max(1, round(len(order) * val_share)))
        val = sorted(c for g in order[:n_val] for c in groups[g])
        split = {"train": sorted(c for g in order[n_val:] for c in groups[g]), "val": val}
    if folds:
        if folds < 2 or folds > len(order):
            raise ValueError(f"--folds {folds}: between 2 and the {len(order)} subjects")
        split["folds"] = []
        for k in range(folds):
            val = sorted(c for g in order[k::folds] for c in groups[g])
            split["folds"].append({"train": sorted(c for c in cases if c not in val), "val": val})
    return split


def write_split(split: dict, path: Path, overwrite: bool = False) -> Path:
    from scseg.inference.writing import atomic_write

    return atomic_write(
        path, lambda tmp: tmp.write_text(json.dumps(split, indent=1) + "\n"), overwrite
    )
