"""Does a register-then-refine model correct registration at all, or only where the atlas
follows the anatomy it was trained on? Its corrections, scored against its own prior on two
kinds of subject:

* new copies of the training template, moved as the native subjects are but with seeds that
  training never drew (``--copies``): the same anatomy, so the truth follows the image
  exactly as in training;
* native subjects (``--native``): the validation template's anatomy, whose labels are the
  MNI-space atlas moved with it, not drawn on it.

Each subject gets the atlas registered to it once (affine + demons, as the model's
prediction registers it: its prior), and the model's correction of that very prior, added on
the subject's own grid as ``scseg predict`` adds it (in this process, so that the two differ
by the model alone, not by a second registration). Scored as the parcellation baselines are
(mean Dice over the structures present, 1 mm, each subject's own grid), with the voxels
where the two differ, which of them is right there, and how near the corrections came to
the prior's logit (the largest spread of one voxel's corrections over the classes).

    uv run python benchmarks/parcellation_same_anatomy.py CHECKPOINT [--copies 3] [--native 2]

Results: benchmarks/results/parcellation_same_anatomy.{json,md} (``--results NAME``: NAME).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from common import write

from scseg.atlas.native import write_native_subjects
from scseg.data.samples import prepare_sample
from scseg.evaluation import mean_dice
from scseg.inference import load_model
from scseg.inference import prior as on_grid
from scseg.inference.volume import _input_geometry, model_input

HELD_OUT_SEED = 2000  # training copies draw from 1000 (scseg.atlas.priors.COPY_SEED)


def score(model, image: Path, truth_path: Path) -> dict:
    """The registered prior and the model's prediction of one subject, against its truth."""
    start = time.perf_counter()
    _, shape, _, _ = _input_geometry(image)
    pre, data, x = model_input(model, image, shape)  # registers the atlas: the prior
    register_s = time.perf_counter() - start
    correction = on_grid.correction_logits(model, x, model.data_info["patch_size"], 0.5, 4)
    strength = model.net.strength.item()
    logits = on_grid.PriorLogits(data["prior_input"], strength, model.classes)
    net, _ = on_grid.invert_with_prior(pre, data["image"], correction, tuple(shape[:3]),
                                       prior=logits)  # fmt: skip
    predict_s = time.perf_counter() - start
    truth = np.asarray(nib.load(truth_path).dataobj)
    prior = np.asarray(data["prior_input"])
    changed = prior != net
    spread = float((correction.amax(0) - correction.amin(0)).max())
    return {"prior": mean_dice(truth, prior), "network": mean_dice(truth, net),
            "changed": int(changed.sum()), "network_right": int((changed & (net == truth)).sum()),
            "prior_right": int((changed & (prior == truth)).sum()),
            "strength": round(strength, 3), "largest_spread": round(spread, 3),
            "register_s": round(register_s, 1), "predict_s": round(predict_s, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--copies", type=int, default=3, help="held-out training copies")
    parser.add_argument("--native", type=int, default=2, help="native subjects")
    parser.add_argument("--atlas", default="neuromorphometrics")
    parser.add_argument("--results", default="parcellation_same_anatomy",
                        help="results file name (benchmarks/results/NAME.{json,md})")  # fmt: skip
    args = parser.parse_args()
    folder = prepare_sample("brain_parcellation3d", atlas=args.atlas, native=max(args.native, 1))
    model = load_model(args.checkpoint)
    atlas = tuple(folder / kind / "fsl_mni152.nii.gz" for kind in ("imagesTr", "labelsTr"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copies = write_native_subjects(*atlas, work / "copies", args.copies, HELD_OUT_SEED,
                                       prefix="held_out")  # fmt: skip
        subjects = [("training anatomy, new draws", work / "copies", c) for c in copies]
        subjects += [("validation anatomy (native subjects)", folder, f"native_{k:02d}")
                     for k in range(args.native)]  # fmt: skip
        for kind, root, case in subjects:
            image, truth = (root / f / f"{case}.nii.gz" for f in ("imagesTr", "labelsTr"))
            rows.append({"kind": kind, "case": case,
                         **score(model, image, truth)})  # fmt: skip
            print(rows[-1], flush=True)
    lines = ["| subjects | n | its prior (demons): mean Dice | the model | change | voxels "
             "changed (of ~8.5 M) | where changed, right: model / prior | largest correction "
             "spread / prior logit |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for kind in dict.fromkeys(r["kind"] for r in rows):
        group = [r for r in rows if r["kind"] == kind]
        prior, net = (statistics.mean(r[k] for r in group) for k in ("prior", "network"))
        changed = statistics.mean(r["changed"] for r in group)
        right = [sum(r[k] for r in group) for k in ("network_right", "prior_right")]
        spread = max(r["largest_spread"] for r in group)
        lines.append(f"| {kind} | {len(group)} | {prior:.4f} | {net:.4f} | {net - prior:+.4f} "
                     f"| {changed:,.0f} | {right[0]:,} / {right[1]:,} | {spread:.2f} / "
                     f"{group[0]['strength']:.2f} |")  # fmt: skip
    table = "\n".join(lines)
    print(table)
    meta = {"checkpoint": args.checkpoint, "atlas": args.atlas, "held_out_seed": HELD_OUT_SEED}
    for path in write(args.results, rows, table, meta):
        print(path)


if __name__ == "__main__":
    main()
