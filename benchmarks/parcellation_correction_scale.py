"""Are a register-then-refine model's corrections right but too strong, or wrong? Each
native subject's correction is predicted once and added to its registered prior scaled by
``alpha`` (0: the prior alone; 1: the model as ``scseg predict`` runs it), on the subject's
own 1 mm grid, scored as the parcellation baselines are (mean Dice over the structures
present).

A diagnostic on the validation subjects, not a way to choose ``alpha``: if some
``0 < alpha < 1`` scored above the prior, the corrections would point the right way and a
gate or a smaller step would help; if the score only falls as ``alpha`` grows, the
corrections themselves are wrong.

    uv run python benchmarks/parcellation_correction_scale.py CHECKPOINT [--native 8]

Results: benchmarks/results/parcellation_correction_scale.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics

import nibabel as nib
import numpy as np
from common import write

from scseg.data.samples import prepare_sample
from scseg.evaluation import mean_dice
from scseg.inference import load_model
from scseg.inference import prior as on_grid
from scseg.inference.volume import _input_geometry, model_input

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--native", type=int, default=8)
    parser.add_argument("--atlas", default="neuromorphometrics")
    args = parser.parse_args()
    folder = prepare_sample("brain_parcellation3d", atlas=args.atlas, native=args.native)
    model = load_model(args.checkpoint)
    roi = model.data_info["patch_size"]
    rows = []
    for case in (f"native_{k:02d}" for k in range(args.native)):
        path = folder / "imagesTr" / f"{case}.nii.gz"
        _, shape, _, _ = _input_geometry(path)
        pre, data, x = model_input(model, path, shape)
        correction = on_grid.correction_logits(model, x, roi, 0.5, 4)  # as scseg predict
        truth = np.asarray(nib.load(folder / "labelsTr" / f"{case}.nii.gz").dataobj)
        prior = on_grid.PriorLogits(data["prior_input"], model.net.strength.item(), model.classes)
        for alpha in ALPHAS:
            labels, _ = on_grid.invert_with_prior(pre, data["image"], correction * alpha,
                                                  tuple(shape[:3]), prior=prior)  # fmt: skip
            rows.append({"case": case, "alpha": alpha, "dice": mean_dice(truth, labels)})
            print(f"{case} alpha {alpha:.2f} Dice {rows[-1]['dice']:.4f}", flush=True)
    lines = ["| alpha | mean Dice ± sd over subjects | against alpha 0, per subject: mean "
             "(min, max) |", "|---|---|---|"]  # fmt: skip
    base = {r["case"]: r["dice"] for r in rows if r["alpha"] == 0.0}
    for alpha in ALPHAS:
        dice = [r["dice"] for r in rows if r["alpha"] == alpha]
        diff = [r["dice"] - base[r["case"]] for r in rows if r["alpha"] == alpha]
        spread = f"{statistics.mean(diff):+.4f} ({min(diff):+.4f}, {max(diff):+.4f})"
        lines.append(f"| {alpha:.2f} | {statistics.mean(dice):.4f} ± "
                     f"{statistics.pstdev(dice):.4f} | {spread} |")  # fmt: skip
    table = "\n".join(lines)
    print(table)
    meta = {"checkpoint": args.checkpoint, "atlas": args.atlas, "native_subjects": args.native,
            "strength": round(model.net.strength.item(), 3)}  # fmt: skip
    for path in write("parcellation_correction_scale", rows, table, meta):
        print(path)


if __name__ == "__main__":
    main()
