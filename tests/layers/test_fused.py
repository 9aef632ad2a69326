"""The memory-lean recalibration equals the plain expressions, values and gradients."""

from __future__ import annotations

import pytest
import torch

from scseg.layers import fused


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
@pytest.mark.parametrize("parts", ["c", "s", "cs"])
def test_recalibrate_gradcheck(spatial_dims: int, parts: str, monkeypatch) -> None:
    monkeypatch.setattr(fused, "CHUNK_ELEMENTS", 7)  # force several channel chunks
    g = torch.Generator().manual_seed(0)
    spatial = (4, 3, 5)[:spatial_dims]
    x = torch.randn(2, 5, *spatial, dtype=torch.float64, generator=g, requires_grad=True)
    c = torch.rand(2, 5, *[1] * spatial_dims, dtype=torch.float64, generator=g, requires_grad=True)
    s = torch.rand(2, 1, *spatial, dtype=torch.float64, generator=g, requires_grad=True)
    c_, s_ = (c if "c" in parts else None), (s if "s" in parts else None)
    assert torch.autograd.gradcheck(
        lambda *a: fused._Recalibrate.apply(*a), (x, c_, s_), eps=1e-6, atol=1e-6
    )
    plain = x * ((c_ if c_ is not None else 0) + (s_ if s_ is not None else 0))
    torch.testing.assert_close(fused.recalibrate(x, c_, s_), plain)


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_channel_project_matches_conv(spatial_dims: int, monkeypatch) -> None:
    monkeypatch.setattr(fused, "CHUNK_ELEMENTS", 5)
    conv = getattr(torch.nn, f"Conv{spatial_dims}d")(6, 1, 1).double()
    x = torch.randn(3, 6, *(5, 4, 3)[:spatial_dims], dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(fused.channel_project(x, conv), conv(x))
    assert torch.autograd.gradcheck(
        fused._ChannelProject.apply, (x, conv.weight, conv.bias), eps=1e-6, atol=1e-6
    )


class _SSE(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused.recalibrate(x, spatial=fused.channel_project(x, self.conv))


def test_plain_path_when_tracing() -> None:
    module, x = _SSE(), torch.randn(1, 4, 6, 6)
    traced = torch.jit.trace(module, x, check_trace=False)
    assert "Recalibrate" not in str(traced.graph)  # traced through the plain expressions
    torch.testing.assert_close(traced(x), x * module.conv(x))


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
@pytest.mark.parametrize("kind", ["cse", "sse", "scse"])
def test_fused_training_path_equals_autograd(spatial_dims: int, kind: str, monkeypatch) -> None:
    """Values and every gradient (input and parameters) of the one-node training path
    equal those of plain autograd over the same module."""
    from scseg.layers import attention, create_attention

    monkeypatch.setattr(fused, "CHUNK_ELEMENTS", 11)  # several chunks
    torch.manual_seed(0)
    module = create_attention(kind, 6, spatial_dims, **({"reduction": 2} if kind != "sse" else {}))
    module = module.double()
    x = torch.randn(3, 6, *(5, 4, 3)[:spatial_dims], dtype=torch.float64)

    def run(fused_path: bool):
        monkeypatch.setattr(attention, "use_fused_training", lambda t: fused_path)
        xi = x.clone().requires_grad_()
        module.zero_grad()
        out = module(xi)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        return out.detach(), xi.grad, [p.grad.clone() for p in module.parameters()]

    out_f, gx_f, gp_f = run(True)
    out_p, gx_p, gp_p = run(False)
    torch.testing.assert_close(out_f, out_p)
    torch.testing.assert_close(gx_f, gx_p)
    for a, b in zip(gp_f, gp_p, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("parts", ["c", "s", "cs"])
def test_inplace_inference_equals_plain(parts: str, monkeypatch) -> None:
    monkeypatch.setattr(fused, "CHUNK_ELEMENTS", 13)
    x = torch.randn(2, 5, 6, 7)
    c = torch.rand(2, 5, 1, 1) if "c" in parts else None
    s = torch.rand(2, 1, 6, 7) if "s" in parts else None
    expected = x * ((c if c is not None else 0) + (s if s is not None else 0))
    y = x.clone()
    with torch.no_grad():
        out = fused.recalibrate(y, c, s, inplace=True)
    assert out.data_ptr() == y.data_ptr()  # no new tensor
    torch.testing.assert_close(out, expected)
    z = x.clone().requires_grad_()
    assert fused.recalibrate(z, c, s, inplace=True).data_ptr() != z.data_ptr()  # not with grad


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    fmt = torch.channels_last if t.ndim == 4 else torch.channels_last_3d
    return t.contiguous(memory_format=fmt)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_channels_last_chunks_along_space_with_equal_results(spatial_dims: int, monkeypatch):
    """Channels-last tensors are chunked along their first spatial axis (one memory
    stretch per chunk); values and gradients equal the plain expressions."""
    from scseg.layers import attention, create_attention

    monkeypatch.setattr(fused, "CHUNK_ELEMENTS", 29)  # several chunks of rows
    g = torch.Generator().manual_seed(0)
    spatial = (5, 4, 3)[:spatial_dims]
    x = _channels_last(torch.randn(2, 6, *spatial, dtype=torch.float64, generator=g))
    assert fused._axis(x) == 2 and len(fused._chunks(x, 2)) > 1
    c = torch.rand(2, 6, *[1] * spatial_dims, dtype=torch.float64, generator=g)
    s = _channels_last(torch.rand(2, 1, *spatial, dtype=torch.float64, generator=g))
    xg, cg, sg = (t.clone().requires_grad_() for t in (x, c, s))
    assert torch.autograd.gradcheck(fused._Recalibrate.apply, (xg, cg, sg), eps=1e-6, atol=1e-6)
    with torch.no_grad():
        inplace = fused.recalibrate(x.clone(), c, s, inplace=True)
    torch.testing.assert_close(inplace, x * (c + s))
    conv = getattr(torch.nn, f"Conv{spatial_dims}d")(6, 1, 1).double()
    torch.testing.assert_close(fused._project(x, conv.weight, conv.bias), conv(x))

    for kind in ("cse", "sse", "scse"):
        torch.manual_seed(0)
        options = {"reduction": 2} if kind != "sse" else {}
        module = create_attention(kind, 6, spatial_dims, **options).double()

        def run(fused_path: bool, module=module):
            monkeypatch.setattr(attention, "use_fused_training", lambda t: fused_path)
            xi = x.clone().requires_grad_()
            module.zero_grad()
            out = module(xi)
            (
                out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
            ).sum().backward()
            return [out.detach(), xi.grad, *[p.grad.clone() for p in module.parameters()]]

        for a, b in zip(run(True), run(False), strict=True):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("kind", ["cse", "sse", "scse"])
def test_block_autograd_like_the_plain_path(spatial_dims: int, kind: str, monkeypatch) -> None:
    """Repeated backward, gradcheck and double backward (gradgradcheck) work on the one-node
    CPU path as on the plain one."""
    from scseg.layers import create_attention

    monkeypatch.setattr(fused, "CHUNK_ELEMENTS", 11)
    torch.manual_seed(0)
    options = {} if kind == "sse" else {"reduction": 2}
    block = create_attention(kind, 6, spatial_dims, **options).double()
    # small: gradgradcheck perturbs every element (720 took 50 s in 3D; chunks of 11 still)
    x = torch.randn(2, 6, *(3, 2, 2)[:spatial_dims], dtype=torch.float64, requires_grad=True)
    assert fused.use_fused_training(x)
    loss = block(x).pow(2).sum()
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * first)
    assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradgradcheck(block, (x,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["cse", "sse", "scse"])
def test_decoder_frozen_fine_tune_trains_the_encoder(kind: str) -> None:
    from scseg.models import create_model

    torch.manual_seed(0)
    net = create_model("unet", spatial_dims=3, in_channels=1, classes=2, channels=(4, 8, 16),
                       attention=kind)  # fmt: skip
    net.decoder.requires_grad_(False)
    net.decoder.blocks[0].attention.requires_grad_(False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    optimiser = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    x = torch.randn(2, 1, 16, 16, 16)
    net.train()
    loss = torch.nn.functional.cross_entropy(net(x), (x[:, 0] > 0).long())
    loss.backward()
    optimiser.step()
    after = net.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("encoder.") and k.endswith("weight") for k in moved)
    assert not any(k.startswith("decoder.") and "running" not in k for k in moved)
    # and one frozen layer inside the channel MLP only: the rest of it still trains
    block = net.decoder.blocks[0].attention
    if kind != "sse":
        block.requires_grad_(True)
        cse = block.cse if kind == "scse" else block
        cse.fc1.weight.requires_grad_(False)
        x = torch.randn(2, cse.fc1.in_channels, 4, 4, 4, requires_grad=True)
        block(x).sum().backward()
        assert cse.fc1.weight.grad is None
        assert all(p.grad is not None for p in block.parameters() if p.requires_grad)
