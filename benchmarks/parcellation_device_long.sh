#!/usr/bin/env bash
# The longer-budget runs of benchmarks/results/parcellation_long.md, on one GPU machine:
# the 3D ablation at 4x the config's epochs and 2D none/scse (add) at 2x, side by side.
#   bash benchmarks/parcellation_device_long.sh RUNS.tgz
set -uo pipefail
archive=$1
here=$(dirname "$0")
bash "$here/parcellation_device.sh" "$archive.3d.tgz" 420 8 3 ablation_3d \
  --extra --trainer.max_epochs 96 --trainer.check_val_every_n_epoch 24 &
bash "$here/parcellation_device.sh" "$archive.2d.tgz" 420 6 3 ablation_2d --only none scse_add \
  --extra --trainer.max_epochs 32 --trainer.check_val_every_n_epoch 8 &
wait
