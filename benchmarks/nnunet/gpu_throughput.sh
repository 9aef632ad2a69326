#!/usr/bin/env bash
# scseg's planned 3D tissue config and nnU-Net's trainer at the same patch and patches per
# step, side by side on one GPU in one run (benchmarks/train_throughput.py, issue "every
# step pays for work only"): two epochs each, the second timed, validation included.
# Prepare and carry the wheels and data as gpu_run.sh says (.whl1 first, then .whl2 and
# .gpudata), then run this while the machine is warm:
#   bash benchmarks/nnunet/gpu_throughput.sh      # about 4 minutes on an H100 or H200
# The rows come back in $OUT/gpu_throughput_rows.jsonl: append them to
# benchmarks/results/train_throughput.jsonl here and run `train_throughput.py report`.
source benchmarks/nnunet/gpu_setup.sh
ROWS=benchmarks/results/train_throughput.jsonl
cp $ROWS /tmp/before.jsonl
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
timeout 240 python3 benchmarks/train_throughput.py run --label "GPU ($GPU): scseg" \
  --configs tissue3d
timeout 240 python3 benchmarks/train_throughput.py nnunet --device cuda \
  --label "GPU ($GPU): nnU-Net v2, its own trainer and loader"
diff /tmp/before.jsonl $ROWS | sed -n 's/^> //p' > "$OUT/gpu_throughput_rows.jsonl"
