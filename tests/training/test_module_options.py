"""Runtime options of the module: ``compile`` and ``channels_last`` change speed, never
what is saved or computed."""

from __future__ import annotations

import itertools

import torch

from scseg.training import SegmentationModule

SMALL = {"encoder_name": "resnet18", "decoder_channels": [16, 8, 8, 8, 8]}
OPTIONS = {"arch": "smp_unet", "spatial_dims": 2, "in_channels": 1, "classes": 2,
           "model_options": SMALL}  # fmt: skip


def test_compile_keeps_checkpoint_keys() -> None:
    plain, compiled = SegmentationModule(**OPTIONS), SegmentationModule(**OPTIONS, compile=True)
    assert plain.net._compiled_call_impl is None
    assert compiled.net._compiled_call_impl is not None  # compiles on its first call
    assert list(compiled.state_dict()) == list(plain.state_dict())


def test_channels_last_layout_same_values_and_gradients() -> None:
    torch.manual_seed(0)
    plain = SegmentationModule(**OPTIONS)
    fast = SegmentationModule(**OPTIONS, channels_last=True)
    fast.load_state_dict(plain.state_dict())
    conv = fast.net.decoder.blocks[0].conv.conv1.conv
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    x = torch.randn(2, 1, 64, 64)  # a plain (contiguous) batch, as the loaders give
    outputs, grads = [], []
    for module in (plain, fast):
        y = module.train()(x)
        y.square().mean().backward()
        outputs.append(y)
        grads.append(module.net.decoder.blocks[0].attention.sse.conv.weight.grad)
    assert outputs[1].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-5)


def test_sgd_is_nnunets_and_unknown_optimizers_are_refused() -> None:
    import pytest

    module = SegmentationModule(arch="unet", spatial_dims=3, classes=2, optimizer="sgd",
                                lr=0.01, weight_decay=3e-5, scheduler="none",
                                model_options={"channels": [4, 8]})  # fmt: skip
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert (group["momentum"], group["nesterov"], group["lr"], group["weight_decay"]) == (
        0.99, True, 0.01, 3e-5)  # fmt: skip
    with pytest.raises(ValueError, match="optimizer must be one of"):
        SegmentationModule(arch="unet", spatial_dims=3, classes=2, optimizer="adam")


def test_warmup_rises_linearly_then_the_schedule_decays_over_the_rest() -> None:
    import pytest

    module = SegmentationModule(arch="unet", spatial_dims=3, classes=2, lr=0.01, warmup_epochs=2,
                                model_options={"channels": [4, 8]})  # fmt: skip
    module.trainer = type("T", (), {"max_epochs": 10})()  # what configure_optimizers reads
    config = module.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:3] == pytest.approx([0.001, 0.0055, 0.01])  # a tenth, halfway, the full lr
    # then cosine over the remaining 8 epochs: falling every epoch, a quarter of the way
    # down after two of them
    assert all(a > b for a, b in itertools.pairwise(lrs[2:]))
    assert lrs[4] == pytest.approx(0.01 * (1 + torch.cos(torch.tensor(torch.pi / 4))) / 2)
    with pytest.raises(ValueError, match="warmup_epochs must be >= 0"):
        SegmentationModule(arch="unet", spatial_dims=3, classes=2, warmup_epochs=-1)
