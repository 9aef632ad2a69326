"""Peak memory and time of 3D prediction and of a validation step against the number of
classes, on a 1 mm 182x218x182 brain (the FSL MNI152 template of the parcellation sample,
or any ``--volume``), with untrained 3D ``unet`` networks (channels 8-64) of 3, 32 and 137
classes.

- ``scseg predict``: the command itself, on a checkpoint trained "at" 2 mm (windows 64^3,
  overlap 0.5, its default window batch), writing the label map. Peak resident memory of
  the process (VmHWM at exit, imports included: what the user sees), the peak it adds
  over the process after imports, and wall time.
- validation step: ``SegmentationModule.validation_step`` on the brain at 1 mm (windows
  64^3, window batch 2, Dice + cross-entropy, Dice/IoU counts) against random labels: the
  peak memory the step adds and its time. Run under an 18 GiB address-space limit, so a
  step that needs more fails instead of swapping the machine.

Each measurement is a fresh process; ``--before REV`` (repeatable) measures git revisions
too (temporary worktrees, same environment).

    uv run python benchmarks/predict_memory.py --before 27f0832
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import extra_peak_mib, markdown_table, revision_trees, status_kib, write

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VOLUME = ROOT.parent / "shared/data/samples/brain_parcellation3d/MNI152_T1_1mm_brain.nii.gz"
CLASSES = (3, 32, 137)
CHANNELS = [8, 16, 32, 64]
LIMIT = 18 << 30


def make_checkpoint(path: Path, classes: int) -> None:
    """An untrained scseg checkpoint, as training would save it (run with each revision's
    own code, so each loads what it wrote)."""
    import torch

    from scseg.training import SegmentationModule

    torch.manual_seed(0)
    module = SegmentationModule(arch="unet", spatial_dims=3, classes=classes,
                                model_options={"channels": CHANNELS})  # fmt: skip
    info = {"patch_size": [64, 64, 64], "spacing": [2.0, 2.0, 2.0], "intensity": "zscore",
            "class_names": [f"structure_{i}" for i in range(classes)]}  # fmt: skip
    extra = {"architecture": getattr(module, "architecture", None), "data_info": info}
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "scseg": extra}, path)  # fmt: skip


def predict_worker(checkpoint: str, volume: str, out: str) -> None:
    """``scseg predict`` in this process; prints its peaks (after imports and overall)."""
    start = time.perf_counter()
    import scseg.inference  # noqa: F401  (torch, MONAI, nibabel: the baseline)
    from scseg.cli import main

    Path("/proc/self/clear_refs").write_text("5")
    imported = status_kib("VmRSS")
    code = main(["predict", "--checkpoint", checkpoint, "--input", volume, "--output", out,
                 "--quiet"])  # fmt: skip
    peak = status_kib("VmHWM")
    if code:
        raise SystemExit(f"scseg predict failed ({code})")
    print(json.dumps({"code": code, "peak_mib": peak / 1024, "added_mib": (peak - imported) / 1024,
                      "seconds": time.perf_counter() - start}))  # fmt: skip


def validation_worker(volume: str, classes: int) -> None:
    """One validation step at 1 mm; prints the peak it adds and its time."""
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))
    import nibabel as nib
    import torch

    from scseg.training import SegmentationModule

    torch.manual_seed(0)
    module = SegmentationModule(arch="unet", spatial_dims=3, classes=classes,
                                model_options={"channels": CHANNELS}, roi_size=[64, 64, 64],
                                sw_batch_size=2).eval()  # fmt: skip
    image = torch.from_numpy(nib.load(volume).get_fdata(dtype="float32"))
    image = ((image - image.mean()) / image.std())[None, None]
    label = torch.randint(0, classes, image.shape, dtype=torch.uint8)
    batch = {"image": image, "label": label}
    seconds: list[float] = []

    def step() -> None:
        start = time.perf_counter()
        with torch.inference_mode():
            module.validation_step(batch, 0)
        seconds.append(time.perf_counter() - start)

    try:
        peak = extra_peak_mib(step)
    except (MemoryError, RuntimeError) as err:  # torch reports allocation failures so
        print(json.dumps({"error": f"{type(err).__name__}: {str(err)[:80]}"}))
        return
    print(json.dumps({"peak_mib": peak, "seconds": seconds[0]}))


def run_worker(tree: Path, args: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True,
                         text=True)  # fmt: skip
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:  # killed, or a failure before the worker could report
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {out.returncode}: {tail[:80]}"}
    return json.loads(lines[-1])


def cell_mib(value: dict, key: str) -> str:
    return f"{value[key]:.0f} MiB" if key in value else "failed"


def ratio(value: dict, base: dict, key: str) -> str:
    return f"x{value[key] / base[key]:.2f}" if key in value and key in base else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", default=str(DEFAULT_VOLUME))
    parser.add_argument("--before", action="append", help="a git revision to measure too")
    parser.add_argument("--worker", choices=["checkpoint", "predict", "validation"],
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--classes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "checkpoint":
        return make_checkpoint(Path(args.checkpoint), args.classes)
    if args.worker == "predict":
        return predict_worker(args.checkpoint, args.volume, args.out)
    if args.worker == "validation":
        return validation_worker(args.volume, args.classes)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, revision_trees(ROOT, args.before) as trees:
        for classes in CLASSES:
            row: dict = {"classes": classes}
            for label, tree in trees.items():
                out = Path(tmp) / f"{label}_{classes}"
                checkpoint = Path(tmp) / f"{label}_{classes}.ckpt"
                common = ["--volume", args.volume, "--classes", str(classes)]
                run_worker(tree, ["--worker", "checkpoint", *common, "--checkpoint",
                                  str(checkpoint)])  # fmt: skip
                predict = run_worker(tree, ["--worker", "predict", *common, "--checkpoint",
                                            str(checkpoint), "--out", str(out)])  # fmt: skip
                validation = run_worker(tree, ["--worker", "validation", *common])
                row[label] = {"predict": predict, "validation": validation}
            rows.append(row)
            print(json.dumps(row), flush=True)
    tables = []
    for stage, keys in (("predict", ("peak_mib", "added_mib")), ("validation", ("peak_mib",))):
        headers = ["classes"]
        for label in trees:
            for key in keys:
                name = {"peak_mib": "peak RSS" if stage == "predict" else "added peak",
                        "added_mib": "added peak"}[key]  # fmt: skip
                headers += [f"{label}: {name}", f"{label}: / 3 classes"]
            headers.append(f"{label}: time")
        table = []
        for row in rows:
            cells: list = [row["classes"]]
            for label in trees:
                value, base = row[label][stage], rows[0][label][stage]
                for key in keys:
                    cells += [cell_mib(value, key), ratio(value, base, key)]
                cells.append(f"{value['seconds']:.1f} s" if "seconds" in value else
                             value.get("error", "failed"))  # fmt: skip
            table.append(cells)
        title = ("`scseg predict` (whole process)" if stage == "predict" else
                 "validation step at 1 mm (peak added to the process)")  # fmt: skip
        tables.append(f"### {title}\n\n{markdown_table(headers, table)}")
    meta = {"volume": Path(args.volume).name, "revisions": list(trees)}
    for path in write("predict_memory", rows, "\n\n".join(tables), meta):
        print(path)


if __name__ == "__main__":
    main()
