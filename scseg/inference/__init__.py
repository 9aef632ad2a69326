"""Inference: checkpoints in, 3D sliding-window and 2D predictions out, geometry kept."""

from scseg.inference.checkpoint import CheckpointError, LoadedModel, load_model, load_models
from scseg.inference.image import predict_image
from scseg.inference.runner import PredictOptions, collect_inputs, predict_files
from scseg.inference.volume import InputError, VolumePrediction, predict_volume

__all__ = [
    "CheckpointError",
    "InputError",
    "LoadedModel",
    "PredictOptions",
    "VolumePrediction",
    "collect_inputs",
    "load_model",
    "load_models",
    "predict_files",
    "predict_image",
    "predict_volume",
]
