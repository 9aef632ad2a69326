"""Labels alone mapped back from the training grid at 137 classes: every class resampled
to the input and the running argmax, against the shortcut that resamples every class only
where the coarse cell around an input voxel does not settle its class
(``scseg.inference.inversion.settled_argmax``).

The 1 mm MNI152 template preprocessed at 2 mm (92 x 110 x 92 back to 182 x 218 x 182), with
probabilities of 137 smooth regions (a softmax of distances to 137 random centres), as a
trained parcellation network gives them; an untrained network's noise settles nowhere, and
then the shortcut hands over to the full mapping (``benchmarks/predict_memory.py``).

    uv run python benchmarks/label_inversion.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write

SAMPLES = Path(__file__).resolve().parents[2] / "shared/data/samples"
VOLUME = SAMPLES / "brain_parcellation3d" / "MNI152_T1_1mm_brain.nii.gz"
CLASSES = 137


def main() -> None:
    from scseg.inference import LoadedModel, volume

    info = {"patch_size": [64, 64, 64], "spacing": [2.0, 2.0, 2.0], "intensity": "zscore"}
    model = LoadedModel(torch.nn.Identity(), 3, 1, CLASSES, {}, info)
    pre, data = volume.preprocess_volume(model, VOLUME)
    image, shape = data["image"], volume._input_geometry(VOLUME)[1]
    g = torch.Generator().manual_seed(0)
    axes = [torch.linspace(0, 1, n) for n in image.shape[1:]]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    centres = torch.rand(CLASSES, 3, generator=g)
    logits = torch.empty(CLASSES, *image.shape[1:])
    for c in range(CLASSES):
        logits[c] = -((grid - centres[c].view(3, 1, 1, 1)) ** 2).sum(0) * 2000
    probs = torch.softmax(logits, 0)
    del logits
    start = time.perf_counter()
    settled, _ = volume._invert_argmax(pre, image, probs, shape)
    shortcut = time.perf_counter() - start
    full_path = volume.settled_argmax
    volume.settled_argmax = lambda *args: None
    start = time.perf_counter()
    everything, _ = volume._invert_argmax(pre, image, probs, shape)
    whole = time.perf_counter() - start
    volume.settled_argmax = full_path
    result = {"classes": CLASSES, "coarse": list(image.shape[1:]), "input": list(shape),
              "shortcut_s": round(shortcut, 2), "every_class_s": round(whole, 2),
              "labels_equal": bool(np.array_equal(settled, everything)),
              "regions_found": len(np.unique(settled)), "torch": torch.__version__}  # fmt: skip
    table = ["| path | seconds |", "|---|---|",
             f"| every class mapped back, running argmax | {whole:.1f} |",
             f"| settled cells: every class only where a cell does not settle | {shortcut:.1f} |",
             "", f"Labels equal: {result['labels_equal']}; regions found: "
             f"{result['regions_found']}; {result['coarse']} -> {result['input']}."]  # fmt: skip
    meta = {"volume": VOLUME.name, "classes": CLASSES}
    write("label_inversion", [result], "\n".join(table), meta)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
