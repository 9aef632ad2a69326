# Sourced by gpu_run.sh and gpu_throughput.sh on a lent GPU machine (no network): installs
# the carried wheels (.whl2) into /tmp/site, points nnunet_env() at them, and seeds the
# samples from the carried .gpudata.
set -u
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 nnUNet_compile=false
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
  .whl2/*.whl
ENV=runs/against_nnunet/nnunet-env  # what nnunet_env() looks for: its python and CLI
mkdir -p $ENV/bin
ln -sf "$(command -v python3)" $ENV/bin/python
for f in /tmp/site/bin/*; do ln -sf "$f" $ENV/bin/; done
export SCSEG_DATA_DIR=/tmp/scdata SCSEG_SAMPLES_SEED=$PWD/.gpudata/samples
