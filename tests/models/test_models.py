"""Every model x spatial_dims x attention: shapes, gradients, odd sizes, options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import scseg
from scseg.layers import ChannelSE, ChannelSpatialSE, SpatialSE

ATTENTION_TYPES = {
    "none": nn.Identity,
    "cse": ChannelSE,
    "sse": SpatialSE,
    "scse": ChannelSpatialSE,
}
# Small widths keep the suite fast on two cores; the defaults are checked for size below.
SMALL = {
    "smp_unet": {"encoder_name": "resnet18", "decoder_channels": (32, 16, 16, 8, 8)},
    "unet": {"channels": (8, 16, 32)},
    "resunet": {"channels": (8, 16, 32)},
}
CASES = [("smp_unet", 2), ("unet", 2), ("unet", 3), ("resunet", 2), ("resunet", 3)]


def _input(spatial_dims: int, size: int = 32, batch: int = 2, channels: int = 1) -> torch.Tensor:
    sizes = [size] * spatial_dims if spatial_dims == 2 else [size // 2] * 3
    return torch.randn(batch, channels, *sizes)


@pytest.mark.parametrize("attention", list(ATTENTION_TYPES))
@pytest.mark.parametrize(("name", "spatial_dims"), CASES)
def test_forward_backward(name: str, spatial_dims: int, attention: str) -> None:
    torch.manual_seed(0)
    model = scseg.create_model(
        name,
        spatial_dims=spatial_dims,
        in_channels=1,
        classes=3,
        attention=attention,
        **SMALL[name],
    )
    blocks = model.decoder.blocks
    assert isinstance(blocks, nn.ModuleList) and len(blocks) > 0
    assert all(type(block.attention) is ATTENTION_TYPES[attention] for block in blocks)
    x = _input(spatial_dims)
    y = model(x)
    assert y.shape == (2, 3, *x.shape[2:])
    y.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("upsample", ["transposed", "nearest"])
@pytest.mark.parametrize(("name", "spatial_dims"), [c for c in CASES if c[0] != "smp_unet"])
def test_nd_models_take_odd_sizes(name: str, spatial_dims: int, upsample: str) -> None:
    model = scseg.create_model(
        name, spatial_dims=spatial_dims, in_channels=2, classes=2, upsample=upsample,
        **SMALL[name],
    )  # fmt: skip
    ups = [block.up for block in model.decoder.blocks]
    if upsample == "transposed":  # to the skip's width, as nnU-Net
        assert [u.conv.out_channels for u in ups] == [16, 8] and all(
            u.conv.stride == (2,) * spatial_dims for u in ups
        )
    else:
        assert ups == [None, None]
    sizes = (17, 23, 9)[:spatial_dims] if spatial_dims == 3 else (33, 21)
    y = model(torch.randn(1, 2, *sizes))
    assert y.shape == (1, 2, *sizes)


def test_unknown_upsample() -> None:
    with pytest.raises(ValueError, match="unknown upsample 'bilinear'; choose one of: nearest"):
        scseg.create_model("unet", spatial_dims=2, in_channels=1, classes=2, upsample="bilinear")


@pytest.mark.parametrize(("name", "spatial_dims"), [("unet", 2), ("unet", 3), ("resunet", 3)])
def test_strided_stem(name: str, spatial_dims: int) -> None:
    torch.manual_seed(0)
    model = scseg.create_model(
        name, spatial_dims=spatial_dims, in_channels=1, classes=3, stem_stride=2,
        deep_supervision=1, **SMALL[name],
    )  # fmt: skip
    assert model.encoder.strides == [2, 4, 8]
    sizes = (17, 23, 9)[:spatial_dims] if spatial_dims == 3 else (33, 21)  # odd: no cropping
    x = torch.randn(2, 1, *sizes)
    features = model.encoder(x)
    assert features[0].shape[2:] == tuple((s + 1) // 2 for s in sizes)  # no full-res stage
    outputs = model.train()(x)
    assert [o.shape for o in outputs] == [(2, 3, *sizes)] * 2
    sum(o.square().mean() for o in outputs).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.eval()(x).shape == (2, 3, *sizes)
    with pytest.raises(ValueError, match="stem_stride must be 1 or 2, got 4"):
        scseg.create_model(name, spatial_dims=3, in_channels=1, classes=2, stem_stride=4)


def test_smp_model_rejects_indivisible_size_clearly() -> None:
    model = scseg.create_model(
        "smp_unet", spatial_dims=2, in_channels=1, classes=2, **SMALL["smp_unet"]
    )
    with pytest.raises(ValueError, match=r"\(33, 64\) is not divisible by 32"):
        model(torch.randn(1, 1, 33, 64))
    with pytest.raises(ValueError, match="2 spatial axes"):
        model(torch.randn(1, 1, 32, 32, 32))


def test_smp_model_is_2d_only() -> None:
    with pytest.raises(ValueError, match="2D only"):
        scseg.create_model("smp_unet", spatial_dims=3, in_channels=1, classes=2)


@pytest.mark.parametrize("encoder_name", ["mobilenet_v2", "mit_b0", "efficientnet-b0"])
def test_other_smp_encoders(encoder_name: str) -> None:
    # mit_b0 has a 0-channel stride-2 feature: the decoder must cope with empty skips.
    in_channels = 3 if encoder_name == "mit_b0" else 1
    model = scseg.create_model(
        "smp_unet", spatial_dims=2, in_channels=in_channels, classes=2, encoder_name=encoder_name,
        decoder_channels=(32, 16, 16, 8, 8),
    )  # fmt: skip
    assert model(torch.randn(1, in_channels, 64, 64)).shape == (1, 2, 64, 64)


def test_unknown_smp_encoder() -> None:
    with pytest.raises(ValueError, match="unknown SMP encoder 'resnet35'"):
        scseg.create_model(
            "smp_unet", spatial_dims=2, in_channels=1, classes=2, encoder_name="resnet35"
        )


def test_typo_in_option_is_an_error() -> None:
    with pytest.raises(ValueError, match="atention"):
        scseg.create_model("unet", spatial_dims=3, in_channels=1, classes=2, atention="sse")


@pytest.mark.parametrize(("name", "spatial_dims"), [("smp_unet", 2), ("unet", 3)])
def test_deep_supervision_logits_at_native_resolution(name: str, spatial_dims: int) -> None:
    options = {**SMALL[name], "channels": (8, 16, 16, 16)} if name == "unet" else SMALL[name]
    model = scseg.create_model(
        name, spatial_dims=spatial_dims, in_channels=1, classes=3, deep_supervision=2, **options
    )
    x = _input(spatial_dims)
    outputs = model.train()(x)
    assert isinstance(outputs, list) and len(outputs) == 3
    assert all(o.shape == (2, 3, *x.shape[2:]) for o in outputs)
    sum(o.mean() for o in outputs).backward()
    assert all(h.weight.grad is not None for h in model.aux_heads)
    assert model.eval()(x).shape == (2, 3, *x.shape[2:])  # plain logits at inference
    with pytest.raises(ValueError, match="deep_supervision"):
        scseg.create_model(
            name, spatial_dims=spatial_dims, in_channels=1, classes=3, deep_supervision=9
        )


def test_encoder_attention_option() -> None:
    model = scseg.create_model(
        "unet", spatial_dims=3, in_channels=1, classes=2, attention="cse", encoder_attention=True,
        **SMALL["unet"],
    )  # fmt: skip
    assert all(isinstance(a, ChannelSE) for a in model.encoder.attention)
    plain = scseg.create_model("unet", spatial_dims=3, in_channels=1, classes=2, **SMALL["unet"])
    assert all(isinstance(a, nn.Identity) for a in plain.encoder.attention)


def test_reduction_and_combine_reach_every_block() -> None:
    model = scseg.create_model(
        "unet",
        spatial_dims=2,
        in_channels=1,
        classes=2,
        reduction=4,
        combine="max",
        **SMALL["unet"],
    )
    for block in model.decoder.blocks:
        assert block.attention.combine == "max"
        assert block.attention.cse.fc1.out_channels == max(
            1, block.attention.cse.fc1.in_channels // 4
        )
    # The same flat options are ignored by attention types that do not use them.
    sse = scseg.create_model(
        "unet", spatial_dims=2, in_channels=1, classes=2, attention="sse", reduction=4
    )
    assert isinstance(sse.decoder.blocks[0].attention, SpatialSE)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "spatial_dims", "in_channels"), [("smp_unet", 2, 3), ("unet", 3, 1), ("resunet", 3, 1)]
)
def test_attention_parameter_overhead_under_two_percent(
    name: str, spatial_dims: int, in_channels: int
) -> None:
    def build(attention: str) -> nn.Module:
        return scseg.create_model(
            name, spatial_dims=spatial_dims, in_channels=in_channels, classes=2, attention=attention
        )

    base = _params(build("none"))
    for attention in ("cse", "sse", "scse"):
        overhead = _params(build(attention)) / base - 1
        assert 0 < overhead < 0.02, f"{name} {attention}: +{overhead:.2%}"


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize(("stride", "size"), [(2, 17), (2, 16), (4, 19)])
def test_strided_logits_upsample_in_register(spatial_dims: int, stride: int, size: int) -> None:
    """A ramp sampled where the strided encoder centres its voxels (input voxel stride*j)
    comes back as the same ramp on the input grid: no half-voxel shift."""
    from scseg.layers.grid import upsample_to

    m = -(-size // stride)
    coarse = torch.arange(m, dtype=torch.float64) * stride
    shape = [1, 1, m] + [3] * (spatial_dims - 1)
    logits = coarse.view(1, 1, m, *[1] * (spatial_dims - 1)).expand(shape).contiguous()
    up = upsample_to(logits, [size] + [3 * stride] * (spatial_dims - 1), stride)
    assert up.shape[2:] == (size, *[3 * stride] * (spatial_dims - 1))
    line = up[(0, 0, slice(None), *[0] * (spatial_dims - 1))]
    interior = stride * (m - 1) + 1
    expected = torch.arange(size, dtype=torch.float64).clamp(max=interior - 1)
    torch.testing.assert_close(line, expected)  # beyond the last centre: the edge repeated


def test_upsampling_per_axis_keeps_each_axis_in_register() -> None:
    """A coarse axis left unpooled (stride 1) is not interpolated; the pooled ones are, as
    with one stride for all: a ramp along each axis comes back as the input's ramp."""
    from scseg.layers.grid import upsample_to

    size, stride = (9, 8, 5), (2, 4, 1)
    pairs = zip(size, stride, strict=True)
    coarse = [torch.arange(-(-n // s), dtype=torch.float64) * s for n, s in pairs]
    grid = torch.stack(torch.meshgrid(*coarse, indexing="ij"))[None]  # (1, 3, ...)
    up = upsample_to(grid, size, stride)
    assert up.shape[2:] == size
    for axis, (n, s) in enumerate(zip(size, stride, strict=True)):
        line = up[0, axis].movedim(axis, 0)[(slice(None), *[0] * 2)]
        last = s * (len(coarse[axis]) - 1)
        torch.testing.assert_close(line, torch.arange(n, dtype=torch.float64).clamp(max=last))


@pytest.mark.parametrize("upsample", ["transposed", "nearest"])
def test_anisotropic_pooling_leaves_the_coarse_axis_until_asked(upsample: str) -> None:
    """nnU-Net's per-axis strides and kernels: the third axis is not pooled by the first
    downsampling, its first kernels span one slice, and the output (with deep supervision)
    keeps any input size."""
    net = scseg.create_model(
        "unet", spatial_dims=3, in_channels=1, classes=3, channels=[4, 8, 8, 8],
        strides=[1, (2, 2, 1), 2, (2, 2, 1)], kernel_sizes=[(3, 3, 1), 3, 3, 3],
        deep_supervision=2, upsample=upsample,
    )  # fmt: skip
    x = torch.randn(2, 1, 35, 30, 7)
    shapes = [tuple(f.shape[2:]) for f in net.encoder(x)]
    assert shapes == [(35, 30, 7), (18, 15, 7), (9, 8, 4), (5, 4, 4)]
    assert net.size_divisor == (8, 8, 2)
    assert net.encoder.stages[0].conv1.conv.kernel_size == (3, 3, 1)
    assert net.decoder.blocks[-1].conv.conv1.conv.kernel_size == (3, 3, 1)  # lands on stage 0
    net.train()
    outputs = net(x)
    assert [tuple(o.shape) for o in outputs] == [(2, 3, 35, 30, 7)] * 3
    sum(o.mean() for o in outputs).backward()
    with pytest.raises(ValueError, match="strides needs one entry per stage"):
        scseg.create_model("unet", spatial_dims=3, in_channels=1, classes=2,
                           channels=[4, 8], strides=[1, 2, 2])  # fmt: skip
    with pytest.raises(ValueError, match="expected a positive int or 3"):
        scseg.create_model("unet", spatial_dims=3, in_channels=1, classes=2,
                           channels=[4, 8], strides=[1, (2, 2)])  # fmt: skip


def test_he_init_and_affine_norm_are_nnunets_blocks() -> None:
    torch.manual_seed(0)
    options = {"spatial_dims": 3, "in_channels": 1, "classes": 2, "channels": [16, 32, 64]}
    default = scseg.create_model("unet", **options)
    he = scseg.create_model("unet", **options, init="he", norm=("instance", {"affine": True}))
    conv = he.decoder.blocks[0].conv.conv1.conv  # 64 + 32 channels in, 3x3x3
    fan_in = conv.weight[0].numel()
    expected = (2 / (1 + 0.01**2) / fan_in) ** 0.5  # He for leaky ReLU, slope 0.01
    assert float(conv.weight.detach().std()) == pytest.approx(expected, rel=0.05)
    plain = default.decoder.blocks[0].conv.conv1.conv
    ratio = conv.weight.detach().std() / plain.weight.detach().std()
    assert float(ratio) == pytest.approx(6**0.5, rel=0.1)
    norms = [m for m in he.modules() if isinstance(m, nn.InstanceNorm3d)]
    assert norms and all(n.affine and n.weight is not None for n in norms)
    assert not any(m.affine for m in default.modules() if isinstance(m, nn.InstanceNorm3d))
    assert he(torch.randn(1, 1, 16, 16, 16)).shape == (1, 2, 16, 16, 16)
    with pytest.raises(ValueError, match="init must be one of"):
        scseg.create_model("unet", **options, init="xavier")
