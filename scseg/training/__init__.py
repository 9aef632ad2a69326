"""Training: the LightningModule, losses, metrics and callbacks."""

from scseg.training.losses import SegmentationLoss
from scseg.training.metrics import SegmentationMetrics
from scseg.training.module import SegmentationModule

__all__ = ["SegmentationLoss", "SegmentationMetrics", "SegmentationModule"]
