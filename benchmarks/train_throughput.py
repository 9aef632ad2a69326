"""Training throughput: steps per second, the share of a step spent waiting on the loader,
and validation time per epoch, for the configs users train, as ``scseg fit`` runs them.

Each config is built by scseg's own LightningCLI (``SCSegCLI``, progress bar and
checkpoints as in ``scseg fit``) and trained for two epochs of ``--steps`` steps; the first
is a warm-up (workers start, caches fill, allocators settle), the second is measured by a
callback that notes the time at the start and end of every batch:

- **step**: from a batch's start to its end (forward, loss, backward, optimiser);
- **wait**: from the end of one batch to the start of the next (the loader, the progress
  bar, logging: everything that is not learning), and before the first;
- **steps/s**: steps over the measured epoch's wall time; **wait share**: wait over it;
- **validation**: the seconds of the measured epoch's validation.

The code measured is the ``scseg`` that Python imports: run it from another checkout
(``PYTHONPATH=/path/to/checkout``) to measure that one with the same script, as the
before/after rows were.

    uv run python benchmarks/train_throughput.py run --label "main (1e40ddf)"
    uv run python benchmarks/train_throughput.py run --label "..." --configs tissue3d
    uv run python benchmarks/train_throughput.py nnunet      # the reference row

The reference: nnU-Net v2's own trainer (``nnUNetTrainer_scsegBudget``, timing each
``train_step`` and the waits on its loader) at the planned tissue config's patch and
patches per step, on its own preprocessing of the same blocks, in its own environment
(``benchmarks/nnunet/``), on the CPU with its default augmentation processes (one a core).
    uv run python benchmarks/train_throughput.py report

Results: ``benchmarks/results/train_throughput.{jsonl,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
ROWS = RESULTS / "train_throughput.jsonl"
AUGMENT = RESULTS / "train_throughput_augment.jsonl"
WORK = REPO / "runs" / "train_throughput"

CONFIGS = {
    "tissue3d": "the planned 3D tissue config (`scseg plan --spacing 2 2 2` of the tissue blocks)",
    "quickstart3d": "configs/quickstart_3d.yaml",
    "quickstart2d": "configs/quickstart_2d.yaml",
    "parcellation2d": "configs/brain_parcellation_2d.yaml",
}
# steps per epoch: about a minute of each on two cores
STEPS = {"tissue3d": 30, "quickstart3d": 12, "quickstart2d": 40, "parcellation2d": 30}


class StepTimer(pl.Callback):
    """Times every training batch (start to end) and the waits between them, and each
    validation; keeps the epochs' records in ``self.epochs``."""

    def __init__(self) -> None:
        self.epochs: list[dict] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._last = self._epoch_start = time.perf_counter()
        self._steps, self._waits = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()
        self._waits.append(self._start - self._last)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._last = time.perf_counter()
        self._steps.append(self._last - self._start)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # Lightning validates before this hook: the validation found in self._val_s
        wall = self._last - self._epoch_start
        self.epochs.append({"wall_s": wall, "steps": list(self._steps), "waits": list(self._waits),
                            "val_s": getattr(self, "_val_s", None)})  # fmt: skip
        self._val_s = None

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._val_start = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._val_s = time.perf_counter() - self._val_start


def planned_tissue_config(work: Path) -> Path:
    """The tissue blocks and ``scseg plan``'s 3D config of them, as the head-to-head plans
    them (2 mm), made once in ``work``."""
    config = work / "tissue3d.yaml"
    if not config.exists():
        scseg = [sys.executable, "-m", "scseg.cli"]
        subprocess.run([*scseg, "data", "own_scans", "--out", str(work)], check=True,
                       capture_output=True)  # fmt: skip
        subprocess.run([*scseg, "plan", "--data", str(work / "own_scans"), "--out", str(config),
                        "--spacing", "2", "2", "2", "--dims", "3"], check=True,
                       capture_output=True)  # fmt: skip
    return config


def measure(name: str, work: Path, extra: list[str]) -> dict:
    """Two epochs of config ``name`` (:data:`STEPS` each), with ``extra`` command-line
    options; the second one's timings."""
    from scseg.data.base import SegmentationDataModule
    from scseg.training import SegmentationModule
    from scseg.training.cli import SCSegCLI, default_callbacks

    config = planned_tissue_config(work) if name == "tissue3d" else REPO / CONFIGS[name]
    timer = StepTimer()
    with tempfile.TemporaryDirectory(dir=work) as root:
        cli = SCSegCLI(
            SegmentationModule,
            SegmentationDataModule,
            subclass_mode_data=True,
            args=[
                *("fit", "--config", str(config), "--trainer.max_epochs", "2"),
                *(
                    "--trainer.limit_train_batches",
                    str(STEPS[name]),
                    "--trainer.default_root_dir",
                    root,
                ),
                *("--trainer.num_sanity_val_steps", "0"),
                *extra,
            ],
            trainer_defaults={"logger": False, "callbacks": [*default_callbacks(), timer]},
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
        )
    epoch = timer.epochs[-1]
    data = cli.datamodule.hparams
    volumes = type(cli.datamodule).__name__ == "MSD3DDataModule"
    return {
        "config": name,
        **_summary(epoch),
        "val_s": epoch["val_s"],
        "batch_size": data.get("batch_size"),
        # volumes a step times patches from each (3D); slices and images: one each
        "patches": data["batch_size"] * (data["samples_per_volume"] if volumes else 1),
        "num_workers": getattr(
            cli.trainer.train_dataloader, "num_workers", data.get("num_workers")
        ),
        "torch_threads": __import__("torch").get_num_threads(),
        "precision": str(cli.trainer.precision),
    }


def _summary(epoch: dict) -> dict:
    return {
        "steps": len(epoch["steps"]),
        "steps_per_s": len(epoch["steps"]) / epoch["wall_s"],
        "step_s_median": statistics.median(epoch["steps"]),
        "wait_share": sum(epoch["waits"]) / epoch["wall_s"],
        "wait_s_median": statistics.median(epoch["waits"]),
    }


def nnunet(args: argparse.Namespace) -> None:
    """nnU-Net's trainer at the planned tissue config's patch and patches per step: two
    epochs of :data:`STEPS` ``["tissue3d"]`` steps, the second one's timings."""
    import shutil

    import yaml
    from nnunet.environment import nnunet_env, sh
    from nnunet.pipelines import nnunet_plans, nnunet_raw
    from nnunet.settings import DATASETS, NNUNET, TRAINER

    WORK.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load(planned_tissue_config(WORK).read_text())
    split = json.loads((WORK / "tissue3d_split.json").read_text())
    env = nnunet_env()
    raw = nnunet_raw("tissue", WORK / "own_scans", config, split, env)
    planned = nnunet_plans("tissue", env, raw, "3d_fullres")
    folder = Path(env["nnUNet_preprocessed"]) / raw.name
    plans = json.loads((folder / f"{planned['plans']}.json").read_text())
    data = config["data"]["init_args"]
    patch = data["patch_size"][::-1]  # nnU-Net's arrays are (z, y, x); ours (x, y, z)
    batch = data["batch_size"] * data["samples_per_volume"]
    plans["configurations"]["3d_fullres"].update(patch_size=patch, batch_size=batch)
    plans["plans_name"] = "nnUNetPlans_scsegPatch"  # its data_identifier: the same data
    (folder / "nnUNetPlans_scsegPatch.json").write_text(json.dumps(plans, indent=1))
    timing, results = WORK / "nnunet_timing.jsonl", WORK / "nnunet_results"
    timing.unlink(missing_ok=True)
    shutil.rmtree(results, ignore_errors=True)
    steps = STEPS["tissue3d"]
    run_env = {
        **env,
        "nnUNet_results": str(results),
        "SCSEG_NNUNET_EPOCHS": "2",
        "SCSEG_NNUNET_ITERATIONS": str(steps),
        "SCSEG_NNUNET_TIMING": str(timing),
        "nnUNet_n_proc_DA": str(min(12, os.cpu_count() or 1)),
    }  # its default on a GPU
    sh(["nnUNetv2_train", str(DATASETS["tissue"]["id"]), "3d_fullres", "all", "-tr", TRAINER,
        "-p", "nnUNetPlans_scsegPatch", "-device", args.device], env=run_env,
       log=WORK / "nnunet_train.log")  # fmt: skip
    epoch = [json.loads(line) for line in timing.open()][-1]
    row = {"label": args.label, "commit": NNUNET, "cpus": os.cpu_count(), "config": "tissue3d",
           **_summary(epoch), "val_s": None, "batch_size": epoch["batch_size"],
           "patches": epoch["batch_size"], "precision": "32-true",
           "patch_size": epoch["patch_size"], "num_workers": run_env["nnUNet_n_proc_DA"],
           "torch_threads": None}  # fmt: skip
    with open(ROWS, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))


def run(args: argparse.Namespace) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    import scseg

    checkout = str(Path(scseg.__file__).parents[1])
    git = ["git", "-C", checkout, "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, capture_output=True, text=True).stdout.strip()
    for name in args.configs:
        row = {"label": args.label, "commit": commit, "cpus": os.cpu_count(),
               "options": args.options, **measure(name, WORK, args.options)}  # fmt: skip
        with open(ROWS, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row))


def augment(args: argparse.Namespace) -> None:
    """The random tail of the planned tissue config's training pipeline, transform by
    transform, on one thread (as in a loader worker): the mean milliseconds of each over
    ``--items`` patches drawn from the cached volumes; results to ``AUGMENT``."""
    import importlib

    import torch
    import yaml
    from monai.transforms import Randomizable, RandomizableTrait, Transform

    torch.set_num_threads(1)
    WORK.mkdir(parents=True, exist_ok=True)
    config = (
        planned_tissue_config(WORK) if args.config == "tissue3d" else REPO / CONFIGS[args.config]
    )
    spec = yaml.safe_load(config.read_text())["data"]
    module, name = spec["class_path"].rsplit(".", 1)
    data = getattr(importlib.import_module(module), name)(**spec["init_args"])
    data.prepare_data()
    data.setup("fit")
    cached = getattr(data.train_set, "dataset", data.train_set)  # under Repeated
    chain = cached.transform.transforms
    # where MONAI's cache stops: the first random (or non-Transform) step
    start = cached.transform.get_index_of_first(
        lambda t: isinstance(t, RandomizableTrait) or not isinstance(t, Transform)
    )
    torch.manual_seed(0)
    times: dict[str, float] = {}
    for i in range(args.items):
        item = cached._cache[i % len(cached._cache)]
        item = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in item.items()}
        for j, t in enumerate(chain[start:]):
            if isinstance(t, Randomizable):
                t.set_random_state(seed=int(torch.randint(2**31 - 1, ())))
            begin = time.perf_counter()
            item = [t(x) for x in item] if isinstance(item, list) else t(item)
            name = f"{j:02d} {type(t).__name__}"
            times[name] = times.get(name, 0.0) + time.perf_counter() - begin
    rows = [{"label": args.label, "config": args.config, "transform": k,
             "ms": 1000 * v / args.items} for k, v in times.items()]  # fmt: skip
    with open(AUGMENT, "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    for r in rows:
        print(f"{r['transform']:40s} {r['ms']:8.2f} ms")
    print(f"{'total':40s} {sum(r['ms'] for r in rows):8.2f} ms")


def report(args: argparse.Namespace) -> None:
    rows = [json.loads(line) for line in ROWS.open()] if ROWS.exists() else []
    lines = ["<!-- generated by benchmarks/train_throughput.py; do not edit -->", "",
             "# Training throughput", "",
             "Two CPU cores; the second of two epochs (the first warms up); each config as "
             "`scseg fit` runs it. Step: a batch's start to its end; wait: between batches "
             "(loader, progress bar, logging).", ""]  # fmt: skip
    for name, what in CONFIGS.items():
        mine = [r for r in rows if r["config"] == name]
        if not mine:
            continue
        lines += [f"## {name}: {what}", "",
                  "| code | commit | precision | steps | patches a step | workers | steps/s "
                  "| step (median, s) | wait share | validation (s) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in mine:
            val = f"{r['val_s']:.1f}" if r.get("val_s") is not None else ""
            cells = [r["label"], r["commit"], r.get("precision") or "", r["steps"],
                     r["patches"], r["num_workers"],
                     f"{r['steps_per_s']:.3f}", f"{r['step_s_median']:.3f}",
                     f"{100 * r['wait_share']:.1f} %", val]  # fmt: skip
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        lines.append("")
    lines += [
        "Each row is one run. The 2D quickstart's first two rows ran the same code path "
        "(its loader uses albumentations, which the untracked-transforms change does not "
        "touch), so their spread, 2.10 against 2.42 steps/s, is the noise of one run of a "
        "12-step epoch; the 3D rows of 30 steps spread less (1.02 to 1.07 steps/s for the "
        "same float32 code). nnU-Net's row: its own trainer (a wider network, 32-256, four "
        "stages), its loader with one augmentation process a core, float32 (nnU-Net does "
        "not autocast on a CPU), at our plan's patch (24 x 64 x 112 in its axis order) and "
        "2 patches a step.",
        "",
    ]
    lines += [
        "Rows from 2026-12-07 afternoon (79be915 and after) ran while this machine was about "
        "1.8 times slower than in the morning rows (the same bf16 code: 0.93 against 1.69 "
        "steps/s on the tissue config): compare rows of one session only. 79be915 forked its "
        "loader workers again every epoch; the time that costs falls in the wait before an "
        "epoch's first batch (here, with one worker on two cores, about half a second an "
        "epoch; with 12 workers and 1-second epochs on a GPU, most of an epoch). Workers kept "
        "for the run (2ae8236): the tissue config 1.01-1.11 steps/s against 0.91-0.98 over "
        "three runs each (one outlier at 0.81), and validation 3 times faster (0.3-0.4 s "
        "against 0.9-1.1 s: its workers were forked for every validation). On two cores a "
        "worker takes a core from the training threads: the 3D quickstart ran 0.30-0.32 "
        "steps/s with none against 0.20-0.25 with one, the 2D parcellation 1.16 against 1.05, "
        "the tissue config about the same (1.07 against 1.01-1.11); so when the network "
        "trains on the CPU the default is now none, and on a GPU the cores less one (at most "
        "12). Loading in the training process shows as wait (2-8 %); it is still faster. "
        "Deep supervision scored at each block's own resolution (as nnU-Net; "
        "`deep_supervision_at own`) made the tissue step 35 % faster (1.36 steps/s): its "
        "effect on Dice is for the learning-curve runs to measure before it becomes the "
        "plan's default.",
        "",
    ]
    augment_rows = [json.loads(line) for line in AUGMENT.open()] if AUGMENT.exists() else []
    for label in dict.fromkeys(r["label"] for r in augment_rows):
        mine = [r for r in augment_rows if r["label"] == label]
        lines += [f"## The random transforms, one by one ({mine[0]['config']}, {label})", "",
                  "One thread, as in a loader worker; mean over the volume visits drawn (each "
                  "gives a step's `samples_per_volume` patches). The whole tail takes about "
                  "2 % of a CPU step; on a GPU, 12 workers give a step's patches every 2 ms. "
                  "The turn is the costliest; making turn and zoom one resample would save at "
                  "most the zoom's share, so they stay MONAI's.", "",
                  "| transform | ms a visit |", "|---|---|"]  # fmt: skip
        lines += [f"| {r['transform']} | {r['ms']:.2f} |" for r in mine]
        lines += [f"| total | {sum(r['ms'] for r in mine):.2f} |", ""]
    (RESULTS / "train_throughput.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run")
    go.add_argument("--label", required=True, help="what code this is (a commit, a change)")
    go.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    go.add_argument(
        "--options",
        nargs=argparse.REMAINDER,
        default=[],
        help="scseg fit options for every config (last), e.g. --trainer.precision 32-true",
    )
    go.set_defaults(fn=run)
    ref = sub.add_parser("nnunet", help="nnU-Net's trainer at the tissue plan's patch and batch")
    ref.add_argument("--label", default="nnU-Net v2, its own trainer and loader")
    ref.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ref.set_defaults(fn=nnunet)
    prof = sub.add_parser("augment", help="the random transforms, one by one, on one thread")
    prof.add_argument("--label", required=True)
    prof.add_argument("--config", choices=["tissue3d", "quickstart3d"], default="tissue3d")
    prof.add_argument("--items", type=int, default=40)
    prof.set_defaults(fn=augment)
    sub.add_parser("report").set_defaults(fn=report)
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
