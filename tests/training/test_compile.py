"""``compile: true`` compiles the network in place: checkpoints keep their keys."""

from __future__ import annotations

from scseg.training import SegmentationModule


def test_compile_keeps_checkpoint_keys() -> None:
    options = {"arch": "unet", "spatial_dims": 2, "in_channels": 1, "classes": 2,
               "model_options": {"channels": [4, 8]}}  # fmt: skip
    plain, compiled = SegmentationModule(**options), SegmentationModule(**options, compile=True)
    assert plain.net._compiled_call_impl is None
    assert compiled.net._compiled_call_impl is not None  # compiles on its first call
    assert list(compiled.state_dict()) == list(plain.state_dict())
