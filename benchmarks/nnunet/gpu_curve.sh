#!/usr/bin/env bash
# Issue 52's GPU comparison in one go: the 3D tissue curve at 1620 steps (30 epochs of 54),
# three repeats of scseg's plan as this CPU writes it (variant cpu-plan: widths from 16,
# bf16) and of nnU-Net's 3d_fullres, all six at once on one GPU, each pinned to its own
# cores. About 6-8 minutes on an H100 or H200 (one run alone took about 2 minutes there).
# Prepare and carry the wheels and data as gpu_run.sh says (.whl1 first, then .whl2 and
# .gpudata), then, while the machine is warm:
#   bash benchmarks/nnunet/gpu_curve.sh         # EPOCHS=30 REPEATS=3 BUDGET_S=540
# The rows come back in $OUT/gpu_curve_rows.jsonl: append them to
# benchmarks/results/against_nnunet.jsonl here, then run both reports (against_nnunet.py,
# learning_curves.py; the curve tissue-3d-gpu).
source benchmarks/nnunet/gpu_setup.sh
ROWS=benchmarks/results/against_nnunet.jsonl
cp $ROWS /tmp/before.jsonl
EPOCHS=${EPOCHS:-30} REPEATS=${REPEATS:-3}
NOTE="GPU, runs at once"
# one preparation for all six: the data, scseg's plan, nnU-Net's plan and preprocessing
(cd benchmarks && python3 -c "
from nnunet.environment import nnunet_env
from nnunet.pipelines import nnunet_plans, nnunet_raw, prepare, run_base
base = run_base('tissue', 3); base.mkdir(parents=True, exist_ok=True)
data, config, split = prepare('tissue', base, dims=3)
prepare('tissue', base, 'cpu-plan', 3)
env = nnunet_env()
nnunet_plans('tissue', env, nnunet_raw('tissue', data, config, split, env), '3d_fullres')
") > "$OUT/prepare.log" 2>&1 || { tail -20 "$OUT/prepare.log"; exit 1; }
for r in $(seq 0 $((REPEATS - 1))); do
  common=(--dataset tissue --epochs "$EPOCHS" --repeat "$r" --note "$NOTE")
  timeout "${BUDGET_S:-540}" taskset -c $((2 * r)),$((2 * r + 1)) python3 \
    benchmarks/against_nnunet.py run "${common[@]}" --variant cpu-plan > "$OUT/scseg_r$r.log" 2>&1 &
  timeout "${BUDGET_S:-540}" taskset -c $((6 + 3 * r))-$((8 + 3 * r)) python3 \
    benchmarks/against_nnunet.py run "${common[@]}" --nnunet-only --no-equal-time \
    > "$OUT/nnunet_r$r.log" 2>&1 &
done
wait
diff /tmp/before.jsonl $ROWS | sed -n 's/^> //p' > "$OUT/gpu_curve_rows.jsonl"
wc -l < "$OUT/gpu_curve_rows.jsonl"
tail -n 3 "$OUT"/*_r*.log
