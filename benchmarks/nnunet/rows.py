"""The results file: every row as saved (``against_nnunet.jsonl``), read back and
appended to, and a row's mean over its classes."""

from __future__ import annotations

import json

import numpy as np

from nnunet.settings import DATASETS, NNUNET, ROWS_FILE


def read_rows() -> list[dict]:
    """Every row of the raw results file, in the order they were saved."""
    return [json.loads(line) for line in ROWS_FILE.open()]


def save(rows: list[dict], name: str) -> None:
    with open(ROWS_FILE, "a") as f:
        for row in rows:
            f.write(json.dumps({**row, "title": DATASETS[name]["title"], "nnunet": NNUNET}) + "\n")
    print(f"appended {len(rows)} rows to {ROWS_FILE}")


def mean_score(scores: dict, classes: list[str], key: str) -> float:
    return float(np.mean([scores[c][key] for c in classes if key in scores.get(c, {})]))
