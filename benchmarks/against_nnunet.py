"""Against nnU-Net: its whole pipeline, run through its own command line, beside scseg's
``plan`` -> ``fit`` -> ``predict`` on the same training and held-out cases, both scored by
``scseg evaluate``, at equal gradient steps and at equal training wall time.

nnU-Net v2 (``nnunetv2``, pinned below) lives in its own environment
(``runs/against_nnunet/nnunet-env``, made with uv), never in scseg's. Per dataset and repeat:

1. scseg: ``scseg plan`` (its split: training and held-out cases), then ``scseg fit`` for E
   epochs, ``scseg predict --tta`` on the held-out cases with the last checkpoint.
2. nnU-Net: the same training cases in its raw layout (``imagesTr``, ``labelsTr``, the
   held-out cases in ``imagesTs``), ``nnUNetv2_plan_and_preprocess``, ``nnUNetv2_train ...
   all -tr nnUNetTrainer_scsegBudget`` (its default trainer with E epochs of as many steps as
   scseg's epoch, ``nnunet/``), ``nnUNetv2_predict`` (final checkpoint, its default mirroring).
   In 3D both draw 2 patches per step, so equal steps are equal patches.
   ``--dims 2``: slice by slice, ``scseg plan --dims 2`` against nnU-Net's ``2d``
   configuration, each with its own planned batch of slices (recorded per row).
3. Equal wall time: whichever trained faster at equal steps trains again for as many steps
   as fit in the slower one's training time.
4. A baseline that needs no learning, scored the same way.

    uv run python benchmarks/against_nnunet.py run --dataset tissue --epochs 8 [--repeat 0]
    uv run python benchmarks/against_nnunet.py run --dataset tissue --dims 2 --epochs 8
    uv run python benchmarks/against_nnunet.py report

Results: ``benchmarks/results/against_nnunet.{md,csv}``; the raw rows (every class's scores) in
``benchmarks/results/against_nnunet.jsonl``, which ``report`` reads.

The harness is the package ``benchmarks/nnunet/``: ``settings`` (datasets, plans, notes),
``environment`` (nnU-Net's own uv environment), ``pipelines`` (each pipeline's steps),
``runs`` (``run``, ``training-fit``, ``repredict``), ``rows`` (the results file),
``report`` (the tables) and ``cli``; this file is its entry point.
"""

from __future__ import annotations

from nnunet.cli import main

if __name__ == "__main__":
    main(__doc__.split("\n\n")[0])
