#!/usr/bin/env bash
# How benchmarks/results/parcellation*.md were made: the runs of benchmarks/parcellation.py
# on one GPU machine, several at once, within a time limit; what finished is packed into
# RUNS.tgz (metrics, per-structure scores, configs, logs) for `parcellation.py report`.
#   bash benchmarks/parcellation_device.sh RUNS.tgz SECONDS JOBS SEEDS GROUP... [--extra FIT ARGS]
set -uo pipefail
archive=$1 seconds=$2 jobs=$3 seeds=$4
shift 4
runs=$(mktemp -d)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout "$seconds" python3 benchmarks/parcellation.py run --output "$runs" --jobs "$jobs" \
  --seeds "$seeds" --group "$@"
echo "run: exit $?"
(cd "$runs" && find . \( -name metrics.csv -o -name val_per_class.csv -o -name config.yaml \
  -o -name train.log \) -print0 | tar czf "$archive" --null -T -)
ls -la "$archive"
