"""Choosing the configuration by cross-validation (``scseg cross-validate``), after
nnU-Net's ``nnUNetv2_find_best_configuration``: the planned configurations read and
checked (:mod:`.configurations`), trained, predicted and scored fold by fold
(:mod:`.crossval`), and the choice tabled and packed (:mod:`.choice`)."""

from __future__ import annotations

from scseg.selection.choice import choose, package_choice, table, write_results
from scseg.selection.configurations import (
    Configuration,
    SelectionError,
    folds,
    read_configurations,
)
from scseg.selection.crossval import Candidate, cross_validate

__all__ = [
    "Candidate",
    "Configuration",
    "SelectionError",
    "choose",
    "cross_validate",
    "folds",
    "package_choice",
    "read_configurations",
    "table",
    "write_results",
]
