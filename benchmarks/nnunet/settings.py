"""What the head-to-head compares: where it keeps its runs and rows, the datasets and
their budgets, the plans and variants of scseg, and the notes that mark rows."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1]
REPO = BENCHMARKS.parent
RESULTS = BENCHMARKS / "results"

ROWS_FILE = RESULTS / "against_nnunet.jsonl"  # every row, as saved; report reads it

RUNS = REPO / "runs" / "against_nnunet"

ENV = RUNS / "nnunet-env"

NNUNET = "nnunetv2==2.8.1"

TRAINER = "nnUNetTrainer_scsegBudget"

SCSEG = [sys.executable, "-m", "scseg.cli"]

# per dataset: nnU-Net's dataset id, and what both plans are asked to change
DATASETS = {
    "tissue": {
        "id": 901,
        "epochs": 8,  # the standard budget; a run of other epochs has folders of its own
        "title": "brain tissue blocks (`scseg data own_scans`: 6 training, 2 held-out), 2 mm",
        # both at 2 mm (each would plan the data's 1 mm), to fit two CPU cores
        "plan": ["--spacing", "2", "2", "2"],
        "nnunet_plan": ["-overwrite_target_spacing", "2", "2", "2"],
        "names": {"class_1": "grey matter", "class_2": "white matter"},
    },
    "tumour": {
        "id": 902,
        "epochs": 4,
        "title": "tumour MR (`scseg data tumour3d`: 2 training, 1 held-out), each plan's "
        "spacing, patches planned for 2 GB",
        # both plan their patch for 2 GB instead of 8 (nnU-Net's reference GPU), to fit
        # two CPU cores
        "plan": ["--memory", "2"],
        "nnunet_plan": ["-gpu_memory_target", "2"],
    },
    "parcellation": {
        "id": 903,
        "epochs": 4,
        "title": "whole-brain parcellation (`scseg data brain_parcellation3d --native 8`, 136 "
        "structures): trained on the FSL MNI152 template, held out: native-space subjects "
        "00-03, scored on their own 1 mm grids; both at 2 mm, patches planned for 2 GB, "
        "no left-right mirroring (left and right structures)",
        "plan": ["--spacing", "2", "2", "2", "--memory", "2"],
        "nnunet_plan": ["-overwrite_target_spacing", "2", "2", "2", "-gpu_memory_target", "2"],
        # what validates: the subjects that position alone cannot pass (issue 28)
        "held_out": [f"native_{i:02d}" for i in range(4)],
        # nnU-Net's array axes (z, y, x of a LAS/RAS volume; y, x of its 2d's axial slices):
        # not x, left-right; scseg's plan leaves out left-right itself, since the class
        # names name sides
        "nnunet_mirror_axes": {"3d_fullres": "0,1", "2d": "0"},
    },
    "nuclei": {
        "id": 904,
        "epochs": 8,
        "title": "nuclei (`scseg data nuclei2d`: one 512x512 fluorescence image of the DSB2018 "
        "set in 16 tiles of 128x128; the sample's split, the right quarter's 4 tiles held out), "
        "scseg's 2D image-folder plan against nnU-Net's 2d on the same tiles as PNG",
        "plan": [],
        "nnunet_plan": [],
        "names": {"class_1": "nucleus"},
        "images": True,  # a 2D image folder (images/, masks/), not volumes
    },
}

SLICES = (
    "slice by slice: scseg's planned slice-wise U-Net (`scseg plan --dims 2`) "
    "against nnU-Net's 2d configuration"
)

MAX_COLUMNS = 6  # classes with a column of their own in the table; more: the mean only

# rows from an earlier version of scseg's plan (their "plan" field), and what differed
PLANS = {
    "before class-first slices": "scseg's slice-wise plan before 2026-12-04 (late morning) "
    "wrote `slice_sampling: case`: a case, then any foreground voxel of it, so mostly the "
    "largest structure's; it now writes `class`: a case, then a class present in it, each "
    "as likely, then a voxel of that class (nnU-Net's oversampling). Measured as a variant "
    "first (3 seeds each: the parcellation +0.6 points [-0.0, +1.3], the tissue blocks +0.5 "
    "[-0.6, +1.7]); `--variant any-voxel` runs the earlier draw",
    "one class drawn": "today's slice-wise plan (`slice_sampling: class`), run before a case "
    "with one class stopped drawing a random number for it (2026-12-04): the same "
    "distribution of slices and patches as `case`, other random numbers for the same seeds. "
    "Its repeat 2 fitted nothing (Dice 0 on its own training cases, nothing marked held "
    "out) where repeats 0 and 1 fitted 0.51 and 0.43: at 164 steps the tumour's fit "
    "depends on the seed. Today's plan draws as `case`, number for number (tested)",
    "before per-case slices": "scseg's slice-wise module before 2026-12-03 (late) drew a "
    "foreground slice among all training cases' slices (a case with more tumour slices drawn "
    "more often: brain1's 16 against breast1's 2) and cropped it anywhere; it now draws as "
    "nnU-Net's 2d: a case, each as likely, then a foreground voxel of it, the patch centred "
    "on it (`slice_sampling: case`)",
    "before per-axis pooling": "scseg's plan before 2026-12-03 pooled every axis at every "
    "stage, so a patch 24 voxels short along one axis got 3 stages (the tissue blocks: "
    "100 x 60 x 24, widths 16-64); the plan now pools as nnU-Net does (a short or coarse "
    "axis stops, the others go on): 112 x 64 x 24, 5 stages, widths 16-256",
    "end-padded prediction": "per-case slices, but predicted as before 2026-12-03 (late): "
    "a slice smaller than the training patch was padded at its end, to the encoder's divisor "
    "only, where training had padded it to the patch, centred; it is now padded as in "
    "training (`pad_predict`'s `least`). The same models, predicted again (`repredict`)",
}

# where scseg falls short of the goal (within 1 Dice point of nnU-Net, or ahead), the
# measured reason, under that dataset's tables
WHY = {
    ("tumour", 3): "Why neither is ahead, measured: neither pipeline finds the held-out "
    "tumour (`brain2`, 453 voxels) at 200 steps, nor scseg at nnU-Net's training time (750 "
    "steps), whose model fits the large training tumour (`brain1`, 0.63) and not the "
    "143-voxel one. Dice 0 for both, as for predicting background: this sample cannot rank "
    "the two (the slice-wise rows below try five times the steps)",
    ("tumour", 2): "Why neither is ahead, measured: at 820 steps both fit their own training "
    "cases equally (scseg 0.758, nnU-Net 0.760, table above) and both still score 0 on "
    "`brain2`. Both mark bright, contrast-enhancing structures there instead (scseg 3482 "
    "voxels in 39 pieces, a third of them on skull-base slice 0; nnU-Net 1240 voxels in 6 "
    "pieces beside the ventricles and the midline), not the 453-voxel lesion on slices "
    "8-10. Five times the steps raised the fit of what was seen (0.51 and 0.28-0.61 to "
    "0.76) and left the held-out lesion at 0 for both: with one training brain, the limit "
    "is the training cases, not the steps",
}

# an earlier plan's rows are compared with the plan that followed them where that is not
# today's (the change measured alone); else with today's
FOLLOWED_BY = {
    "before per-case slices": "before class-first slices",
    "end-padded prediction": "before class-first slices",
}

# rows measured on another day's machine than the rows they are compared with (their "note"
# field): what differed, measured; their training time is marked in the table
NOTES = {
    "slower machine": "trained in a later session (2026-12-03, evening), on a machine 1.5 "
    "to 1.9 times slower: there nnU-Net's 2d took 80-100 s an epoch of the tumour (58 s when "
    "its equal-steps row was measured) and 170 s to predict it (97 s); its 3d_fullres took "
    "23 s a step of the parcellation (12 s). The row's steps were set from the earlier "
    "session's training times; the time marked is this slower machine's",
    "slower machine, night": "trained in the session after that (2026-12-03, night), on a "
    "machine 1.4 to 1.8 times slower than the one of the rows it is compared with: scseg's "
    "slice-wise training took 435 s for the tumour's 164 steps (303 s there), 343 s for the "
    "tissue blocks' 432 (216 s) and 1313 s for the parcellation's 196 (737 s). Not the new "
    "draw: it takes 27 ms a slice of the tissue blocks, against 32 ms for the old one, "
    "measured side by side on this machine",
    "slower machine, shared": "trained in a later session (2026-12-04), on a machine as slow "
    "as the night's, and for about a third of its time beside short test runs on the same two "
    "cores: 7.7 s a step, where the equal-steps row took 4.2 s. Its steps were set from the "
    "equal-steps rows' times (nnU-Net's 3040 s over scseg's 837 s: 750 steps against 200); "
    "the time marked is this machine's",
    "repeats, changing speed": "repeats trained in a later session (2026-12-04, morning), on a "
    "machine of changing speed: nnU-Net's 2d took 121-123 s for the parcellation's 196 steps "
    "(88 s in its first row); scseg's slice-wise repeat 1 ran most of its time beside test "
    "runs and profiling on the same two cores (8.0 s a step), repeat 2 alone (4.8 s; 6.7 s "
    "in the night's row, 3.8 s on the first machine). The steps are the budget; the times "
    "marked are not comparable",
    "one H200 GPU": "trained on one NVIDIA H200 lent to the session of 2026-12-04 (16 CPU "
    "cores; torch 2.11, both stacks carried to it as wheels), at 30 epochs: 1620 steps, 3.75 "
    "times the CPU budget, one run each; nnU-Net without torch.compile "
    "(`nnUNet_compile=false`). Per epoch of 54 steps: scseg about 2.8 s (its progress bar), "
    "nnU-Net 1.1-1.3 s (its log); the times shown include start-up and validation",
    "GPU, runs at once": "trained on one lent GPU by `benchmarks/nnunet/gpu_curve.sh`, the "
    "three repeats of both pipelines at once, each run pinned to its own CPU cores (scseg "
    "2, nnU-Net 3 for its augmentation workers): steps and cases as every row; the times "
    "are six runs sharing one GPU",
    "one core each": "trained two runs at a time, each pinned to one of the two cores "
    "(`taskset`, by `benchmarks/learning_curves.py`): the same steps and cases as any row; "
    "the training times are one core's, not comparable with the rows of two",
}

# beside a marked training time
MARKS = dict(zip(NOTES, ["\\*", "†", "‡", "§", "¶", "°", "‖"], strict=True))

# scseg plan options measured beside the plain plan at equal steps (`run --variant NAME`):
# its label, plan options, and settings changed in the planned config
VARIANTS = {
    "nnunet-schedule": ("scseg, nnU-Net's schedule", ["--schedule", "nnunet"], {}),
    "ds-own": (
        "scseg, deep supervision at each head's resolution",
        [],
        {"model.model_options.deep_supervision_at": "own"},
    ),
    "margin": (
        "scseg, turns and zooms on a larger region (no zero-filled corners)",
        [],
        {"data.init_args.spatial_margin": True},
    ),
    "per-slice": (
        "scseg, foreground slices drawn among all cases' slices, cropped anywhere",
        [],
        {"data.init_args.slice_sampling": "slice"},
    ),
    "any-voxel": (  # slice by slice only (--dims 2): the plan before class-first slices
        "scseg, any foreground voxel of the case",
        [],
        {"data.init_args.slice_sampling": "case"},
    ),
    "anywhere": (
        "scseg, patches not oversampled centred anywhere (nnU-Net)",
        [],
        {"data.init_args.rest_centres": "anywhere"},
    ),
    "fp32": (  # the plan before bf16 on CPUs with bf16 matrix units (AMX)
        "scseg, float32 on the CPU",
        [],
        {"trainer.precision": "32-true"},
    ),
    "bf16": (  # one loader worker, as the plan wrote when the tissue rows were planned
        "scseg, bf16 autocast (bf16-mixed) on the CPU",
        [],
        {"trainer.precision": "bf16-mixed", "data.init_args.num_workers": 1},
    ),
    # issue 52's candidate: the tissue step 35 % faster (train_throughput.md), Dice measured
    # against the bf16 rows (the plan's precision on this machine since 2026-12-07)
    "bf16-ds-own": (
        "scseg, bf16 autocast (bf16-mixed) on the CPU, deep supervision at each head's resolution",
        [],
        {"trainer.precision": "bf16-mixed", "model.model_options.deep_supervision_at": "own"},
    ),
}

# issue 52's candidate causes of the plateau, each one change to the plan as this machine
# runs it (bf16), measured at the learning curve's largest budget and at 432 steps
# (benchmarks/learning_curves.py candidates)
# bf16, and one loader worker as the plan wrote when the curve's rows were planned
BF16 = {"trainer.precision": "bf16-mixed", "data.init_args.num_workers": 1}
VARIANTS |= {
    "gpu-plan": (
        "scseg, the plan a GPU gets (3D: widths from 32; 2D: resnet34)",
        ["--device", "cuda"],
        BF16,
    ),
    "he-affine": (
        "scseg, nnU-Net's blocks: affine instance norm, He init",
        [],
        {
            **BF16,
            "model.model_options.init": "he",
            "model.model_options.norm": ["instance", {"affine": True}],
        },
    ),
    "warmup-clip": (
        "scseg, AdamW after a 2-epoch warm-up, gradients clipped at 12",
        [],
        {**BF16, "model.warmup_epochs": 2, "trainer.gradient_clip_val": 12},
    ),
    "nnunet-optimiser": (
        "scseg, nnU-Net's SGD and poly schedule, gradients clipped at 12",
        ["--schedule", "nnunet"],
        {**BF16, "trainer.gradient_clip_val": 12},
    ),
    "two-cases": (  # as many steps an epoch: twice the repeats for half the patches a case
        "scseg, two cases a step (batch 2 x 1 patch)",
        [],
        {
            **BF16,
            "data.init_args.batch_size": 2,
            "data.init_args.samples_per_volume": 1,
            "data.init_args.repeats": lambda plan: 2 * plan["data"]["init_args"]["repeats"],
        },
    ),
    # on a GPU, the plan this machine writes (issue 52: "the plan carried from the CPU"), so
    # that the GPU curve is the CPU's plan with more steps: widths from 16, bf16, the
    # loader's workers left to scseg (the accelerator's default)
    "cpu-plan": (
        "scseg, the plan a CPU gets (widths from 16), bf16",
        ["--device", "cpu"],
        {"trainer.precision": "bf16-mixed"},
    ),
    "in-plane": (  # nnU-Net's rule: the patch 112 x 64 x 24 is flat, so in-plane turns only
        "scseg, turns about the patch's short axis only, up to 180 degrees",
        [],
        {**BF16, "data.init_args.rotation": [0.0, 0.0, 3.1415]},
    ),
}

# the runs of one repeat that training_fit scores on their training cases: row, folder
RUN_FOLDERS = {("scseg", "equal steps"): "scseg_steps", ("scseg", "equal wall time"): "scseg_time",
               ("nnU-Net", "equal steps"): "nnunet_steps",
               ("nnU-Net", "equal wall time"): "nnunet_time"}  # fmt: skip
