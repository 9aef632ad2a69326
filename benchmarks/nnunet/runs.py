"""The ``run``, ``training-fit`` and ``repredict`` commands: both pipelines at equal steps
and at equal wall time, each row appended to the results file as it lands."""

from __future__ import annotations

import argparse
import json
import os

from nnunet.environment import nnunet_env, nnunet_run_env
from nnunet.pipelines import (
    baseline,
    baselines,
    evaluate,
    held_out_images,
    nnunet_configuration,
    nnunet_plans,
    nnunet_predict,
    nnunet_raw,
    patches_per_step,
    prepare,
    repeat_dir,
    run_base,
    run_nnunet,
    run_scseg,
    scseg_predict,
    steps_per_epoch,
)
from nnunet.rows import mean_score, read_rows, save
from nnunet.settings import DATASETS, MAX_COLUMNS, ROWS_FILE, RUN_FOLDERS, VARIANTS


def training_fit(args: argparse.Namespace) -> None:
    """Every model of ``--repeat`` still under ``runs/`` scored on its own training cases:
    a run that finds nothing held out either has not fit what it saw (the budget is the
    limit) or has fit it and not carried it over (the cases are). Rows are saved with
    ``"scored_on": "training cases"``; ``report`` shows them in a table of their own."""
    name, dims, repeat = args.dataset, args.dims, args.repeat
    base = run_base(name, dims)
    env = nnunet_env()
    data, config, split = prepare(name, base, dims=dims)
    seen = {"train": [], "val": split["train"]}  # scored as validation cases
    split_file = base / "training_cases_split.json"
    split_file.write_text(json.dumps(seen, indent=1))
    images = held_out_images(data, seen, base / "training_cases")
    configuration = nnunet_configuration(dims)
    earlier = read_rows()
    if name != "parcellation" and not any(
        (r["dataset"], r.get("dims", 3), r["budget"], r.get("scored_on"))
        == (name, dims, "no learning", "training cases")
        for r in earlier
    ):  # the baseline that needs no learning, on the same cases, once
        folder = base / "training_cases_baseline"
        what = baseline(name, data, seen, folder)
        save([{"dataset": name, "dims": dims, "repeat": 0, "pipeline": what,
               "budget": "no learning", "steps": 0, "batch": None, "train_s": 0,
               "predict_s": 0, "scored_on": "training cases",
               "scores": evaluate(folder, data, config, split_file)}], name)  # fmt: skip
    runs = repeat_dir(base, name, repeat, args.epochs)
    steps = (args.epochs or DATASETS[name]["epochs"]) * steps_per_epoch(config, split)
    for (pipeline, budget), folder in RUN_FOLDERS.items():
        run, out = runs / folder, runs / folder / "seen"
        if args.only and pipeline != args.only:
            continue
        if pipeline == "scseg" and (run / "checkpoints" / "last.ckpt").is_file():
            seconds = scseg_predict(run, images, out)
        elif pipeline == "nnU-Net" and (run / "results").is_dir():
            raw = nnunet_raw(name, data, config, split, env)
            plans = nnunet_plans(name, env, raw, configuration)["plans"]
            run_env = nnunet_run_env(name, env, run, configuration)
            seconds = nnunet_predict(name, run_env, raw / "imagesTr", out, plans, dims)
        else:
            continue
        (trained,) = [r for r in earlier if (r["dataset"], r.get("dims", 3), r["repeat"],
                                              r["pipeline"], r["budget"], r.get("scored_on"))
                      == (name, dims, repeat, pipeline, budget, None)
                      and (budget != "equal steps" or r["steps"] == steps)][-1:]  # fmt: skip
        row = {**{k: trained[k] for k in ("dataset", "dims", "repeat", "pipeline", "budget",
                                            "steps", "batch", "train_s", "plan", "note")
                  if k in trained},
               "predict_s": round(seconds, 1), "scored_on": "training cases",
               "scores": evaluate(out, data, config, split_file)}  # fmt: skip
        save([row], name)
        print(f"{name} {pipeline} {budget} on its training cases: {row['scores']}", flush=True)


def repredict(args: argparse.Namespace) -> None:
    """scseg's equal-steps model of ``--repeat`` predicts the held-out cases again with
    today's ``scseg predict`` (after a change to prediction alone): a new row, the trained
    row's steps and time with the new scores; the earlier rows of that model (held-out and
    training cases) are labelled ``--earlier`` (a key of ``PLANS``)."""
    name, dims, repeat = args.dataset, args.dims, args.repeat
    base = run_base(name, dims)
    data, config, split = prepare(name, base, dims=dims)
    images = held_out_images(data, split, base / "held_out")
    run = repeat_dir(base, name, repeat, args.epochs) / "scseg_steps"
    steps = (args.epochs or DATASETS[name]["epochs"]) * steps_per_epoch(config, split)
    rows = read_rows()
    mine = [r for r in rows if (r["dataset"], r.get("dims", 3), r["repeat"], r["pipeline"],
                                r["budget"], r.get("plan"), r["steps"])
            == (name, dims, repeat, "scseg", "equal steps", None, steps)]  # fmt: skip
    trained = [r for r in mine if not r.get("scored_on")][-1]
    seconds = scseg_predict(run, images, run / "prediction")
    for r in mine:
        r["plan"] = args.earlier
    ROWS_FILE.write_text("".join(json.dumps(r) + "\n" for r in rows))
    row = {k: v for k, v in trained.items() if k not in ("title", "nnunet", "plan")}
    save([{**row, "predict_s": round(seconds, 1),
           "scores": evaluate(run / "prediction", data, config, base / "scseg_split.json")}],
         name)  # fmt: skip


def run(args: argparse.Namespace) -> None:
    name, repeat, dims = args.dataset, args.repeat, args.dims
    base = run_base(name, dims)
    base.mkdir(parents=True, exist_ok=True)
    # nnU-Net's augmentation workers: the cores this process may run on (one when a run is
    # pinned to a core, as benchmarks/learning_curves.py runs two at a time)
    env = {**nnunet_env(), "nnUNet_n_proc_DA": str(len(os.sched_getaffinity(0)))}
    data, config, split = prepare(name, base, dims=dims)
    images = held_out_images(data, split, base / "held_out")
    per_epoch = steps_per_epoch(config, split)
    ours_batch = patches_per_step(config)

    def record(pipeline: str, budget: str, epochs: int, result: dict) -> None:
        scores = evaluate(result["prediction"], data, config, base / "scseg_split.json")
        row = {"dataset": name, "dims": dims, "repeat": repeat, "pipeline": pipeline,
               "budget": budget, "steps": epochs * per_epoch,
               "batch": result.get("batch", ours_batch) if epochs else None,
               "train_s": round(result["train_s"], 1),
               "predict_s": round(result["predict_s"], 1), "scores": scores,
               **({"note": args.note} if args.note else {})}  # fmt: skip
        save([row], name)  # at once: an interrupted run keeps what it finished
        shown = scores if len(scores) <= MAX_COLUMNS else {
            "mean Dice": round(mean_score(scores, list(scores), "dice"), 4)}  # fmt: skip
        print(f"{name} {pipeline} {budget}: {epochs * per_epoch} steps, "
              f"{result['train_s']:.0f} s, {shown}", flush=True)  # fmt: skip

    run_dir = repeat_dir(base, name, repeat, args.epochs)
    if args.variant:
        label = VARIANTS[args.variant][0]
        _, variant_config, _ = prepare(name, base, args.variant, dims)
        assert steps_per_epoch(variant_config, split) == per_epoch
        result = run_scseg(run_dir / f"scseg_{args.variant}", base / f"scseg_{args.variant}.yaml",
                           args.epochs, repeat, images)  # fmt: skip
        record(label, "equal steps", args.epochs, result)
        return

    def equal_time(who: str, epochs: int) -> None:
        if who == "scseg":
            more = run_scseg(run_dir / "scseg_time", base / "scseg.yaml", epochs, repeat, images)
        else:
            raw = nnunet_raw(name, data, config, split, env)  # made once; then found
            more = run_nnunet(name, run_dir / "nnunet_time", env, epochs, per_epoch, raw, dims)
        record("scseg" if who == "scseg" else "nnU-Net", "equal wall time", epochs, more)

    if args.equal_time_epochs:
        equal_time(args.equal_time_for, args.equal_time_epochs)
        return

    def nnunet_steps() -> dict:
        raw = nnunet_raw(name, data, config, split, env)  # made once; then found
        theirs = run_nnunet(name, run_dir / "nnunet_steps", env, args.epochs, per_epoch, raw, dims)
        record("nnU-Net", "equal steps", args.epochs, theirs)
        return theirs

    if args.nnunet_only:
        nnunet_steps()
        return
    if not args.scseg_only:  # what needs no learning is scored once, not at every repeat
        scored = {r["pipeline"] for r in read_rows() if (r["dataset"], r["dims"], r["budget"])
                  == (name, dims, "no learning") and "scored_on" not in r}  # fmt: skip
        for what, folder in baselines(name, data, split, base).items():
            if what not in scored:
                record(what, "no learning", 0, {"train_s": 0, "predict_s": 0, "prediction": folder})
    ours = run_scseg(run_dir / "scseg_steps", base / "scseg.yaml", args.epochs, repeat, images)
    record("scseg", "equal steps", args.epochs, ours)
    if args.scseg_only:
        return
    theirs = nnunet_steps()
    # equal wall time: the faster one trains again for the slower one's training time
    faster, slower = sorted((ours["train_s"], theirs["train_s"]))
    epochs = max(args.epochs, round(args.epochs * slower / faster))
    who = "scseg" if ours["train_s"] < theirs["train_s"] else "nnunet"
    print(f"equal wall time: {who}, {epochs} epochs (an interrupted or skipped run goes on "
          f"with --equal-time-epochs {epochs} --equal-time-for {who})", flush=True)  # fmt: skip
    if not args.no_equal_time:
        equal_time(who, epochs)
