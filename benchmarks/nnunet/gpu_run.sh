#!/usr/bin/env bash
# The GPU row of against_nnunet.py (the ¶ rows) on a lent machine with no network whose
# python3 has torch, lightning and timm: both stacks come as wheels, carried from here.
#
# Here, at the repository root (Python 3.12 wheels for the device; SimpleITK alone is
# 52.8 MB, so it travels in a call of its own):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl1 simpleitk==2.5.7
#   pip download ... -d .whl2 nnunetv2==2.8.1 dynamic-network-architectures batchgenerators \
#     batchgeneratorsv2 yacs blosc2 ndindex numexpr monai==1.6.1 segmentation-models-pytorch==0.6.0 \
#     nibabel==5.4.2 albumentations==2.0.8 albucore==0.0.24 jsonargparse==4.53.0 \
#     docstring-parser typeshed-client pydantic pydantic-core annotated-types typing-inspection \
#     stringzilla simsimd graphviz fft-conv-pytorch connected-components-3d unittest2 \
#     dicom2nifti pydicom pynrrd==1.1.3
#   pip wheel --no-deps -w .whl2 acvl-utils==0.2.6        # an sdist only on PyPI
#   mkdir -p .gpudata/samples && cp -r ../shared/data/samples/brain_tissue3d .gpudata/samples/
# There: first `pip install --no-deps --target /tmp/site .whl1/*.whl` (carry .whl1), then,
# while the machine is warm, this script (carry .whl2 and .gpudata).
source benchmarks/nnunet/gpu_setup.sh
cp benchmarks/results/against_nnunet.jsonl /tmp/before.jsonl
timeout "${BUDGET_S:-480}" python3 benchmarks/against_nnunet.py run --dataset tissue \
  --epochs "${EPOCHS:-30}" --no-equal-time
# the new rows come back under $OUT (mark them "note": "one H200 GPU" here, then `report`)
diff /tmp/before.jsonl benchmarks/results/against_nnunet.jsonl | sed -n 's/^> //p' \
  > "$OUT/gpu_rows.jsonl"
find runs/against_nnunet/tissue -name "training_log*.txt" | head -1 | xargs -r tail -c 6000 \
  > "$OUT/nnunet_train_tail.log"
