"""Does a register-then-refine model correct registration at all, or only where the atlas
follows the anatomy it was trained on? Its corrections, scored against its own prior on two
kinds of subject:

* new copies of the training template, moved as the native subjects are but with seeds that
  training never drew (``--copies``): the same anatomy, so the truth follows the image
  exactly as in training;
* native subjects (``--native``): the validation template's anatomy, whose labels are the
  MNI-space atlas moved with it, not drawn on it.

Each subject gets the atlas registered to it (affine + demons, as the model's prediction
registers it: its prior), and ``scseg predict`` with the checkpoint (one process per
subject, as a user runs it). Scored as the parcellation baselines are (mean Dice over the
structures present, 1 mm, each subject's own grid), with the voxels where the two differ
and which of them is right there.

    uv run python benchmarks/parcellation_same_anatomy.py CHECKPOINT [--copies 3] [--native 2]

Results: benchmarks/results/parcellation_same_anatomy.{json,md}.
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
from parcellation_baselines import predict_cases

from scseg.data.native import write_native_subjects
from scseg.data.registration import register_labels
from scseg.data.samples import prepare_sample
from scseg.evaluation import mean_dice

HELD_OUT_SEED = 2000  # training copies draw from 1000 (scseg.data.priors.COPY_SEED)


def score(image: Path, truth_path: Path, atlas: tuple[Path, Path], checkpoint: str, work: Path):
    """The registered prior and the model's prediction of one subject, against its truth."""
    prior_path = work / f"prior_{image.name}"
    start = time.perf_counter()
    register_labels(image, *atlas, prior_path, "deformable")
    register_s = time.perf_counter() - start
    case = image.name.removesuffix(".nii.gz")
    (predict_s,) = predict_cases(image.parent.parent, [case], Path(checkpoint), work / "net")
    truth = np.asarray(nib.load(truth_path).dataobj)
    prior = np.asarray(nib.load(prior_path).dataobj)
    net = np.asarray(nib.load(work / "net" / image.name).dataobj)
    changed = prior != net
    return {"prior": mean_dice(truth, prior), "network": mean_dice(truth, net),
            "changed": int(changed.sum()), "network_right": int((changed & (net == truth)).sum()),
            "prior_right": int((changed & (prior == truth)).sum()),
            "register_s": round(register_s, 1), "predict_s": round(predict_s, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--copies", type=int, default=3, help="held-out training copies")
    parser.add_argument("--native", type=int, default=2, help="native subjects")
    parser.add_argument("--atlas", default="neuromorphometrics")
    args = parser.parse_args()
    folder = prepare_sample("brain_parcellation3d", atlas=args.atlas, native=max(args.native, 1))
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
                         **score(image, truth, atlas, args.checkpoint, work)})  # fmt: skip
            print(rows[-1], flush=True)
    lines = ["| subjects | n | its prior (demons): mean Dice | the model | change | voxels "
             "changed (of ~8.5 M) | where changed, right: model / prior |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for kind in dict.fromkeys(r["kind"] for r in rows):
        group = [r for r in rows if r["kind"] == kind]
        prior, net = (statistics.mean(r[k] for r in group) for k in ("prior", "network"))
        changed = statistics.mean(r["changed"] for r in group)
        right = [sum(r[k] for r in group) for k in ("network_right", "prior_right")]
        lines.append(f"| {kind} | {len(group)} | {prior:.4f} | {net:.4f} | {net - prior:+.4f} "
                     f"| {changed:,.0f} | {right[0]:,} / {right[1]:,} |")  # fmt: skip
    table = "\n".join(lines)
    print(table)
    meta = {"checkpoint": args.checkpoint, "atlas": args.atlas, "held_out_seed": HELD_OUT_SEED}
    for path in write("parcellation_same_anatomy", rows, table, meta):
        print(path)


if __name__ == "__main__":
    main()
