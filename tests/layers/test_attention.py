"""cSE, sSE and scSE pinned to the papers' equations with known weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scseg.layers import (
    ChannelSE,
    ChannelSpatialSE,
    SpatialSE,
    attention_names,
    create_attention,
    reduced_channels,
)

DIMS = [1, 2, 3]


def _set_known_weights(module: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g))


def _x(spatial_dims: int, channels: int = 6, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (2, channels, *[5, 4, 3][:spatial_dims])
    # Keep values away from 0 so that y / x is well defined.
    return (torch.rand(shape, generator=g) + 0.5) * torch.where(
        torch.rand(shape, generator=g) > 0.5, 1.0, -1.0
    )


@pytest.mark.parametrize("spatial_dims", DIMS)
def test_cse_matches_equation(spatial_dims: int) -> None:
    module = ChannelSE(6, spatial_dims, reduction=2)
    _set_known_weights(module)
    x = _x(spatial_dims)
    w1 = module.fc1.weight.reshape(3, 6)
    w2 = module.fc2.weight.reshape(6, 3)
    z = x.flatten(2).mean(-1)  # (B, C): global average over *every* spatial axis
    s = torch.sigmoid(torch.relu(z @ w1.T + module.fc1.bias) @ w2.T + module.fc2.bias)
    expected = x * s.reshape(2, 6, *[1] * spatial_dims)
    torch.testing.assert_close(module(x), expected)


@pytest.mark.parametrize("spatial_dims", DIMS)
def test_cse_scales_each_channel_by_one_global_factor(spatial_dims: int) -> None:
    module = ChannelSE(6, spatial_dims, reduction=2)
    _set_known_weights(module)
    x = _x(spatial_dims)
    ratio = (module(x) / x).flatten(2)
    # One factor per (sample, channel), the same at every location ...
    torch.testing.assert_close(ratio, ratio[..., :1].expand_as(ratio))
    # ... and it depends on global statistics: changing the far corner changes it everywhere.
    x2 = x.clone()
    x2[(slice(None), slice(None), *[-1] * spatial_dims)] += 5.0
    ratio2 = (module(x2) / x2).flatten(2)
    assert not torch.allclose(ratio[..., 0], ratio2[..., 0])


@pytest.mark.parametrize("spatial_dims", DIMS)
def test_sse_matches_equation(spatial_dims: int) -> None:
    module = SpatialSE(6, spatial_dims)
    _set_known_weights(module)
    x = _x(spatial_dims)
    w = module.conv.weight.reshape(6)
    q = torch.sigmoid(torch.einsum("bc...,c->b...", x, w) + module.conv.bias)
    torch.testing.assert_close(module(x), x * q.unsqueeze(1))


@pytest.mark.parametrize("spatial_dims", DIMS)
def test_sse_factor_is_local(spatial_dims: int) -> None:
    module = SpatialSE(6, spatial_dims)
    _set_known_weights(module)
    x = _x(spatial_dims)
    ratio = module(x) / x
    # One factor per location, shared by all channels ...
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))
    # ... that depends only on that location's channels.
    x2 = x.clone()
    corner = (slice(None), slice(None), *[0] * spatial_dims)
    x2[corner] += 3.0
    ratio2 = module(x2) / x2
    changed = ~torch.isclose(ratio, ratio2)
    assert changed[corner].all()
    changed[corner] = False
    assert not changed.any()


@pytest.mark.parametrize("spatial_dims", DIMS)
def test_scse_add_is_sum_of_branches(spatial_dims: int) -> None:
    module = ChannelSpatialSE(6, spatial_dims, reduction=2, combine="add")
    _set_known_weights(module)
    x = _x(spatial_dims)
    torch.testing.assert_close(module(x), module.cse(x) + module.sse(x))


@pytest.mark.parametrize("spatial_dims", DIMS)
def test_scse_max_is_elementwise_maximum(spatial_dims: int) -> None:
    module = ChannelSpatialSE(6, spatial_dims, reduction=2, combine="max")
    _set_known_weights(module)
    x = _x(spatial_dims)
    cse, sse = module.cse(x), module.sse(x)
    out = module(x)
    torch.testing.assert_close(out, torch.maximum(cse, sse))
    # Not the same as adding: the choice matters and is not silently ignored.
    assert not torch.allclose(out, cse + sse)


@pytest.mark.parametrize(
    ("channels", "reduction", "hidden"), [(64, 16, 4), (16, 32, 1), (1, 16, 1)]
)
def test_reduced_channels_never_zero(channels: int, reduction: float, hidden: int) -> None:
    assert reduced_channels(channels, reduction) == hidden
    assert ChannelSE(channels, 2, reduction).fc1.out_channels == hidden


def test_create_attention_names_and_options() -> None:
    assert attention_names() == ["cse", "none", "scse", "sse"]
    assert isinstance(create_attention("none", 8, 3), nn.Identity)
    assert isinstance(create_attention("cse", 8, 3, reduction=4), ChannelSE)
    assert isinstance(create_attention("sse", 8, 2), SpatialSE)
    scse = create_attention("scse", 8, 3, combine="max")
    assert isinstance(scse, ChannelSpatialSE) and scse.combine == "max"
    assert isinstance(scse.cse, ChannelSE) and isinstance(scse.sse, SpatialSE)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: create_attention("sce", 8, 2), "cse, none, scse, sse"),
        (lambda: create_attention("sse", 8, 2, reduction=4), "reduction"),
        (lambda: create_attention("scse", 8, 2, combine="mean"), "combine"),
        (lambda: create_attention("cse", 8, 4), "spatial_dims"),
        (lambda: create_attention("cse", 8, 2, reduction=0), "reduction"),
    ],
)
def test_create_attention_rejects_bad_input(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
