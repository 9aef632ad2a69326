"""Scores of predicted label maps against ground truth, per case and per class.

Overlap (Dice, IoU) and surface metrics (95th-percentile Hausdorff distance, mean surface
distance, normalised surface Dice at a tolerance), the latter in world units: millimetres
from the affine of NIfTI/NRRD volumes, pixels for 2D PNG masks. The distances come from
MONAI's metric functions, one class at a time (the memory of one class, not classes x
voxels).

Empty structures (Metrics Reloaded's recommendation, BraTS's worst-case distance):

* absent from truth and prediction: no score (NaN), left out of every mean;
* absent from one of them only: Dice, IoU and NSD 0, HD95 and MSD the largest distance the
  grid holds (its diagonal), so a missed or invented structure counts as the worst case.

Read and paired in :mod:`.files`, scored in :mod:`.scores`, written and printed in
:mod:`.report`.
"""

from __future__ import annotations

from scseg.evaluation.files import (
    EvaluationError,
    LabelMap,
    check_geometry,
    class_names_for,
    dataset_labels,
    pair_files,
    read_label_map,
    read_regions,
)
from scseg.evaluation.report import summarise, summary_table, write_csv
from scseg.evaluation.scores import (
    COLUMNS,
    METRICS,
    class_dice,
    evaluate,
    mean_dice,
    score_class,
)

__all__ = [
    "COLUMNS",
    "METRICS",
    "EvaluationError",
    "LabelMap",
    "check_geometry",
    "class_dice",
    "class_names_for",
    "dataset_labels",
    "evaluate",
    "mean_dice",
    "pair_files",
    "read_label_map",
    "read_regions",
    "score_class",
    "summarise",
    "summary_table",
    "write_csv",
]
