"""Validation on whole volumes streams the logits slab by slab, and scores exactly what
scoring the whole logits did."""

from __future__ import annotations

import pytest
import torch
from monai.inferers import sliding_window_inference

from scseg.training import SegmentationModule
from scseg.training import module as module_file
from scseg.training.metrics import SegmentationMetrics


@pytest.mark.parametrize(("loss", "piece"), [("dicece", 1 << 23), ("focal", 6 * 24 * 20 * 3)])
def test_streamed_validation_equals_whole_logits(loss: str, piece: int, monkeypatch) -> None:
    """Also when each slab is scored in pieces of 3 planes."""
    monkeypatch.setattr(module_file, "PIECE_ELEMENTS", piece)
    torch.manual_seed(0)
    module = SegmentationModule(
        arch="unet", spatial_dims=3, classes=6, loss=loss, ignore_index=9,
        model_options={"channels": [4, 8, 16]}, roi_size=[16, 16, 16], sw_batch_size=2,
    ).eval()  # fmt: skip
    x = torch.randn(2, 1, 40, 24, 20)
    y = torch.randint(0, 6, (2, 1, 40, 24, 20))
    y[:, :, :3] = 9
    streamed, whole = (SegmentationMetrics(6, ignore_index=9) for _ in range(2))
    with torch.inference_mode():
        got = module._volume_loss_and_update(x, y, streamed)
        logits = sliding_window_inference(x, (16, 16, 16), 2, module.net, 0.5, "gaussian")
        expected = module.loss(logits, y)
        whole.update(logits.argmax(1), y)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    for name in ("tp", "fp", "fn", "cases", "dice_sum"):
        assert torch.equal(getattr(streamed, name), getattr(whole, name)), name
