"""137 classes on a real brain within a stated memory budget: what prediction adds for
more classes is one float32 volume of those classes at the training grid (the
probabilities), not several copies of it.

The budget: from 3 to 137 classes, the peak that ``predict_volume`` adds may grow by at
most 1.75 float32 volumes of the 134 extra classes. Measured on two cores: 1.55 (the one
volume, plus the window batch and the class chunks resampled back, which grow with the
classes up to their caps); before the logits were streamed into the probabilities in
place, 2.03 (logits and probabilities both whole).
"""

from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np

from ..conftest import REPO

WORKER = """
import json, sys
from pathlib import Path

import numpy as np
import torch

from scseg.inference import LoadedModel
from scseg.inference.volume import predict_volume
from scseg.models import create_model


def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024


path, classes = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
net = create_model("unet", spatial_dims=3, in_channels=1, classes=classes, channels=(4, 8, 16))
info = {"patch_size": [32, 32, 32], "spacing": [1.0, 1.0, 1.0], "intensity": "zscore"}
model = LoadedModel(net.eval(), 3, 1, classes, {}, info)
Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here on
before = status("VmRSS")
labels = predict_volume(model, path, sw_batch_size=4).labels
print(json.dumps({"added": status("VmHWM") - before, "shape": list(labels.shape),
                  "found": len(np.unique(np.asarray(labels.dataobj)))}))
"""


def _added_peak(volume, classes: int) -> dict:
    """``predict_volume`` in a fresh process (its own peak, nothing inherited)."""
    out = subprocess.run([sys.executable, "-c", WORKER, str(volume), str(classes)],
                         capture_output=True, text=True, check=True, cwd=REPO)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_137_classes_within_budget(raw_samples, tmp_path) -> None:
    brain = nib.load(raw_samples / "brain_parcellation3d" / "MNI152_T1_1mm_brain.nii.gz")
    crop = brain.slicer[43:139, 61:157, 50:130]  # 96 x 96 x 80 at 1 mm, world kept
    volume = tmp_path / "brain.nii.gz"
    nib.save(crop, volume)
    few, many = _added_peak(volume, 3), _added_peak(volume, 137)
    assert many["shape"] == few["shape"] == list(crop.shape)
    assert many["found"] > 100  # an untrained network still spreads over the classes
    one_volume = (137 - 3) * int(np.prod(crop.shape)) * 4  # float32, training grid = input
    growth = (many["added"] - few["added"]) / one_volume
    assert growth <= 1.75, f"137 classes add {growth:.2f} float32 class volumes over 3"
