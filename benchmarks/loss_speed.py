"""The training loss at many classes: Dice + cross-entropy of a deep-supervised 3D U-Net
(four outputs at the patch's resolution) on the whole-brain parcellation's planned patch
(2 x 80^3 voxels, 2 mm), before (MONAI's masked Dice on a one-hot target) and after (the
same loss formed from class counts, :func:`scseg.training.losses._dice_terms`), forward
and backward; and one whole training step, with its peak memory, of the network that
``scseg plan`` chose for 2 GB before and after it counted the outputs of 137 classes, with
its deep-supervision heads upsampled to the patch or at their own resolution.

    uv run python benchmarks/loss_speed.py

Results: benchmarks/results/loss_speed.{json,md}.
"""

from __future__ import annotations

import itertools
import statistics
import time

import torch
import torch.nn.functional as F
from common import extra_peak_mib, interleaved, markdown_table, write
from monai.losses import MaskedDiceLoss

from scseg.models import create_model
from scseg.training.losses import SegmentationLoss, supervised_loss

PATCH = (2, 80, 80, 80)  # batch 2 (the plan's 2 patches per step), 80^3 at 2 mm
OUTPUTS = 4  # the logits and 3 deep-supervision heads, each at the patch's resolution
# the parcellation's plan at 2 GB, before and after its outputs counted in the budget
PLANS = (("outputs not counted", (80, 80, 80), (16, 32, 64, 128, 256)),
         ("outputs counted", (48, 56, 48), (16, 32, 64, 128)))  # fmt: skip


def one_hot_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss as it was: cross-entropy, and MONAI's masked Dice on a one-hot target."""
    labels = target[:, 0]
    onehot = F.one_hot(labels, logits.shape[1]).movedim(-1, 1).to(logits.dtype)
    mask = torch.ones_like(onehot[:, :1])
    dice = MaskedDiceLoss(include_background=False, softmax=True)
    return F.cross_entropy(logits, labels) + dice(logits, onehot, mask=mask)


def main() -> None:
    torch.manual_seed(0)
    rows, table = [], []
    for classes in (3, 137):
        target = torch.randint(0, classes, (PATCH[0], 1, *PATCH[1:]))
        outputs = [torch.randn(PATCH[0], classes, *PATCH[1:], requires_grad=True)
                   for _ in range(OUTPUTS)]  # fmt: skip
        ours = SegmentationLoss("dicece")

        def step(loss, outputs=outputs, target=target):
            return lambda: supervised_loss(loss, outputs, target).backward()

        times = interleaved({"before": step(one_hot_loss), "after": step(ours)}, repeats=3)
        before, after = times["before"]["median_s"], times["after"]["median_s"]
        rows.append({"classes": classes, "before_s": before, "after_s": after})
        table.append([classes, f"{before:.2f} s", f"{after:.2f} s", f"{before / after:.1f}x"])
    md = markdown_table(["classes", "before: loss, forward + backward", "after", "faster"], table)
    steps = []
    for (what, patch, widths), at in itertools.product(PLANS, ("input", "own")):
        net = create_model("unet", spatial_dims=3, in_channels=1, classes=137, channels=widths,
                           deep_supervision=len(widths) - 2,
                           deep_supervision_at=at).train()  # fmt: skip
        x, target = torch.randn(2, 1, *patch), torch.randint(0, 137, (2, 1, *patch))

        def step(net=net, x=x, target=target):
            supervised_loss(SegmentationLoss("dicece"), net(x), target).backward()

        step()  # warm-up
        seconds, peak = [], 0.0
        for _ in range(3):
            start = time.perf_counter()
            peak = max(peak, extra_peak_mib(step))
            seconds.append(time.perf_counter() - start)
        rows.append({"plan": what, "patch": patch, "deep_supervision_at": at,
                     "step_s": statistics.median(seconds), "extra_peak_mib": peak})  # fmt: skip
        steps.append([what, " x ".join(map(str, patch)), f"{widths[0]}-{widths[-1]}", at,
                      f"{statistics.median(seconds):.1f} s", f"{peak / 1024:.1f} GiB"])  # fmt: skip
    md += (
        "\n\nOne training step (forward and backward, 2 patches, 137 classes, deep supervision "
        "on every decoder block but the coarsest), the loss after, as `scseg plan --memory 2 "
        "--spacing 2 2 2` plans the parcellation:\n\n"
    )
    md += markdown_table(["plan", "patch", "widths", "deep supervision at",
                          "step (median of 3)", "extra peak memory"], steps)  # fmt: skip
    md += (
        "\n\n`input`: every auxiliary head's logits interpolated to the patch (as before); "
        "`own`: each at its block's resolution, the labels taken there (nnU-Net's way; "
        "`model_options.deep_supervision_at`)."
    )
    write("loss_speed", rows, md, {"what": f"Dice + CE over {OUTPUTS} outputs of {PATCH}"})
    print(md)


if __name__ == "__main__":
    main()
