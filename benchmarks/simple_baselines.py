"""Baselines that need no learning for the quickstarts, scored as their validation is:

* nuclei (2D quickstart): every validation tile predicted background (the majority
  class), and each tile thresholded at its Otsu threshold (bright = nucleus);
* brain tissue (3D quickstart): the validation volume (superior part, 1 mm) in three
  intensity classes by a two-threshold Otsu over its non-zero voxels (darkest and zero =
  background, then grey matter, brightest = white matter).

Dice per case, averaged over cases (a case without the class does not count), per class
and their mean over foreground classes, as the quickstarts' tables report.

    uv run python benchmarks/simple_baselines.py

Results: benchmarks/results/simple_baselines.{json,md}.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
from common import write
from PIL import Image

from scseg.data.samples import prepare_sample


def dice(truth: np.ndarray, guess: np.ndarray) -> float | None:
    if not truth.any():
        return None
    return float(2 * (truth & guess).sum() / (truth.sum() + guess.sum()))


def otsu(values: np.ndarray, bins: int = 256) -> float:
    """The threshold that maximises the between-class variance of ``values``."""
    counts, edges = np.histogram(values, bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts)[:-1]
    w1 = counts.sum() - w0
    m0 = np.cumsum(counts * centres)[:-1] / np.maximum(w0, 1)
    m1 = (np.sum(counts * centres) - np.cumsum(counts * centres)[:-1]) / np.maximum(w1, 1)
    return float(edges[1:-1][np.argmax(w0 * w1 * (m0 - m1) ** 2)])


def two_thresholds(values: np.ndarray, bins: int = 128) -> tuple[float, float]:
    """Two-threshold Otsu: the pair that maximises the between-class variance."""
    counts, edges = np.histogram(values, bins)
    centres = (edges[:-1] + edges[1:]) / 2
    mean, best, pair = np.average(centres, weights=counts), -1.0, (0, 0)
    for i in range(1, bins - 1):
        for j in range(i + 1, bins):
            score = 0.0
            for part in (slice(0, i), slice(i, j), slice(j, bins)):
                w = counts[part].sum()
                if w:
                    score += w * (np.average(centres[part], weights=counts[part]) - mean) ** 2
            if score > best:
                best, pair = score, (i, j)
    return float(edges[pair[0]]), float(edges[pair[1]])


def nuclei() -> list[dict]:
    folder = prepare_sample("nuclei2d")
    cases = json.loads((folder / "split.json").read_text())["val"]
    rows = []
    for name, rule in (("majority class (background)", None), ("Otsu threshold per tile", otsu)):
        scores = []
        for case in cases:
            image = np.asarray(Image.open(folder / "images" / f"{case}.tif"), np.float32)
            image = image.mean(-1) if image.ndim == 3 else image
            truth = np.asarray(Image.open(folder / "masks" / f"{case}.png")) > 0
            guess = np.zeros_like(truth) if rule is None else image > rule(image)
            if (score := dice(truth, guess)) is not None:
                scores.append(score)
        score = {"nucleus": float(np.mean(scores))}
        rows.append({"task": "nuclei2d (2D quickstart)", "method": name, "dice": score,
                     "cases": len(scores)})  # fmt: skip
    return rows


def brain_tissue() -> list[dict]:
    folder = prepare_sample("brain_tissue3d")
    case = json.loads((folder / "split.json").read_text())["val"][0]
    image = np.asarray(nib.load(folder / "imagesTr" / f"{case}.nii.gz").dataobj, np.float32)
    truth = np.asarray(nib.load(folder / "labelsTr" / f"{case}.nii.gz").dataobj)
    low, high = two_thresholds(image[image > 0])
    guess = np.where(image <= low, 0, np.where(image <= high, 1, 2))
    scores = {
        name: dice(truth == k, guess == k) for k, name in ((1, "grey matter"), (2, "white matter"))
    }
    return [{"task": "brain_tissue3d (3D quickstart)", "method": "two-threshold Otsu on intensity",
             "dice": scores, "cases": 1}]  # fmt: skip


def main() -> None:
    rows = nuclei() + brain_tissue()
    lines = ["| task | method | Dice per class | mean |", "|---|---|---|---|"]
    for r in rows:
        per = ", ".join(f"{k} {v:.3f}" for k, v in r["dice"].items())
        lines.append(
            f"| {r['task']} | {r['method']} | {per} | {np.mean(list(r['dice'].values())):.3f} |"
        )
    table = "\n".join(lines)
    print(table)
    for path in write("simple_baselines", rows, table, {"what": "no-learning baselines"}):
        print(path)


if __name__ == "__main__":
    main()
