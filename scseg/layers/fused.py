"""Memory-lean recalibration arithmetic.

On CPUs the cost of squeeze-and-excitation is not its FLOPs but its full-size temporaries:
``x * (c + s)`` materialises ``c + s`` and the product, each a fresh page-faulting
allocation, and a 1x1 convolution with one output channel first reorders its whole input.
Here both are computed channel-chunk by channel-chunk, so forward allocates only the output
and backward only the input's gradient. When tracing or compiling (ONNX, torch.export,
torch.compile), the plain expressions are used, with identical results.
"""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 1 << 18  # temporaries of at most ~1 MiB (float32) per chunk


def _chunks(x: torch.Tensor) -> list[slice]:
    per_channel = max(1, x[:, :1].numel())
    step = max(1, CHUNK_ELEMENTS // per_channel)
    return [slice(i, min(i + step, x.shape[1])) for i in range(0, x.shape[1], step)]


def _buffer(x: torch.Tensor, chunks: list[slice]) -> torch.Tensor:
    """One chunk-sized scratch tensor, reused by every chunk (no allocation per chunk)."""
    return torch.empty(x.shape[0], chunks[0].stop - chunks[0].start, *x.shape[2:],
                       dtype=x.dtype, device=x.device)  # fmt: skip


def _plain_path() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


def _scale(
    x: torch.Tensor, c: torch.Tensor | None, s: torch.Tensor | None, inplace: bool = False
) -> torch.Tensor:
    """``x * (c + s)`` (either may be None), chunk by chunk, with no temporaries;
    ``inplace`` overwrites ``x`` instead of allocating the output."""
    if inplace:
        chunks = _chunks(x)
        scratch = _buffer(x, chunks) if c is not None and s is not None else None
        for sl in chunks:
            if c is None or s is None:
                x[:, sl].mul_(s if c is None else c[:, sl])
            else:
                x[:, sl].mul_(torch.add(c[:, sl], s, out=scratch[:, : sl.stop - sl.start]))
        return x
    out = torch.empty_like(x)
    for sl in _chunks(x):
        o = out[:, sl]
        if c is None:
            torch.mul(x[:, sl], s, out=o)
            continue
        torch.mul(x[:, sl], c[:, sl], out=o)
        if s is not None:
            o.addcmul_(x[:, sl], s)
    return out


class _Recalibrate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, c, s):
        ctx.save_for_backward(x, c, s)
        ctx.has_c, ctx.has_s = c is not None, s is not None
        return _scale(x, c, s)

    @staticmethod
    def backward(ctx, grad):
        x, c, s = ctx.saved_tensors
        grad_x = _scale(grad, c, s) if ctx.needs_input_grad[0] else None
        want_c = ctx.has_c and ctx.needs_input_grad[1]
        want_s = ctx.has_s and ctx.needs_input_grad[2]
        grad_c = torch.empty_like(c) if want_c else None
        grad_s = torch.zeros_like(s) if want_s else None
        if want_c or want_s:
            spatial = tuple(range(2, x.ndim))
            chunks = _chunks(x)
            scratch = _buffer(x, chunks)
            for sl in chunks:
                product = scratch[:, : sl.stop - sl.start]
                torch.mul(grad[:, sl], x[:, sl], out=product)
                if want_c:
                    grad_c[:, sl] = product.sum(spatial, keepdim=True)
                if want_s:
                    grad_s += product.sum(1, keepdim=True)
        return grad_x, grad_c, grad_s


def recalibrate(
    x: torch.Tensor,
    channel: torch.Tensor | None = None,
    spatial: torch.Tensor | None = None,
    inplace: bool = False,
) -> torch.Tensor:
    """``x * (channel + spatial)``, ``x * channel`` or ``x * spatial``.

    Args:
        x: ``(B, C, *S)``.
        channel: cSE weights ``(B, C, 1, ...)``.
        spatial: sSE map ``(B, 1, *S)``.
        inplace: overwrite ``x`` (only without gradients, and only where the caller owns
            ``x``); saves allocating the output.
    """
    if inplace and not x.is_cuda and not torch.is_grad_enabled() and not _plain_path():
        return _scale(x, channel, spatial, inplace=True)
    # Chunking pays on CPUs, where fresh allocations page-fault; on a GPU the caching
    # allocator makes temporaries cheap and chunks would only add kernel launches.
    if _plain_path() or x.is_cuda:
        if channel is None:
            return x * spatial
        return x * channel if spatial is None else x * (channel + spatial)
    return _Recalibrate.apply(x, channel, spatial)


class _ChannelProject(torch.autograd.Function):
    """``sum_c w[c] * x[:, c] + b`` -> ``(B, 1, *S)``, without reordering or copying ``x``."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return _project(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        w = weight.view(1, -1, *[1] * (x.ndim - 2))
        grad_x = grad * w if ctx.needs_input_grad[0] else None
        grad_w = None
        if ctx.needs_input_grad[1]:
            dims = (0, *range(2, x.ndim))
            chunks = _chunks(x)
            scratch = _buffer(x, chunks)
            parts = []
            for sl in chunks:
                product = scratch[:, : sl.stop - sl.start]
                parts.append(torch.mul(x[:, sl], grad, out=product).sum(dims))
            grad_w = torch.cat(parts).view_as(weight)
        grad_b = grad.sum().view(1) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


def channel_project(x: torch.Tensor, conv: torch.nn.Module) -> torch.Tensor:
    """The 1x1 convolution ``conv`` (C -> 1 channel, with bias) applied to ``x``."""
    if _plain_path() or x.is_cuda:  # cuDNN handles this well; the CPU path reorders x
        return conv(x)
    return _ChannelProject.apply(x, conv.weight, conv.bias)


def _project(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``sum_c weight[c] * x[:, c] + bias`` -> ``(B, 1, *S)``, in place, channel by channel."""
    out = bias.view(1, 1, *[1] * (x.ndim - 2)).expand(x.shape[0], 1, *x.shape[2:]).clone()
    w = weight.view(1, -1, *[1] * (x.ndim - 2))
    for i in range(x.shape[1]):
        out.addcmul_(x[:, i : i + 1], w[:, i : i + 1])
    return out


class _SqueezeExcite(torch.autograd.Function):
    """A whole cSE, sSE or scSE ("add") block as one autograd node, for training.

    Autograd over the module gives ``x`` three full-size gradients (through the scaling,
    the channel mean and the sSE projection) and adds them up. Here backward makes two
    chunked passes and allocates one full-size tensor, the gradient of ``x``; the small
    channel MLP is differentiated by autograd inside backward.
    """

    @staticmethod
    def forward(ctx, x, channel_gate, spatial_gate, conv_weight, conv_bias, *mlp_params):
        c = s = None
        if channel_gate is not None:
            with torch.enable_grad():
                squeezed = x.detach().mean(tuple(range(2, x.ndim)), keepdim=True)
                squeezed.requires_grad_()
                gate = channel_gate(squeezed)
            ctx.graph = (squeezed, gate)
            c = gate.detach()
        if spatial_gate is not None:
            s = spatial_gate(_project(x, conv_weight, conv_bias))
        ctx.save_for_backward(x, c, s, conv_weight, *mlp_params)
        return _scale(x, c, s)

    @staticmethod
    def backward(ctx, grad):
        x, c, s, conv_weight, *mlp_params = ctx.saved_tensors
        spatial = tuple(range(2, x.ndim))
        chunks = _chunks(x)
        scratch = _buffer(x, chunks)
        grad_c = torch.empty_like(c) if c is not None else None
        grad_s = torch.zeros_like(s) if s is not None else None
        for sl in chunks:  # pass 1: both gates' gradients, sum(grad * x) two ways
            product = torch.mul(grad[:, sl], x[:, sl], out=scratch[:, : sl.stop - sl.start])
            if c is not None:
                grad_c[:, sl] = product.sum(spatial, keepdim=True)
            if s is not None:
                grad_s += product.sum(1, keepdim=True)
        grad_params: tuple = (None,) * len(mlp_params)
        grad_w = grad_b = grad_mean = grad_proj = None
        if c is not None:
            squeezed, gate = ctx.graph
            found = torch.autograd.grad(gate, [squeezed, *mlp_params], grad_c, allow_unused=True)
            grad_mean = found[0] / x[0, 0].numel()  # d mean / d x = 1 / (number of voxels)
            grad_params = tuple(found[1:])
        if s is not None:
            grad_proj = grad_s * s * (1 - s)  # through the sigmoid gate
            dims = (0, *spatial)
            grad_w = torch.cat(
                [torch.mul(x[:, sl], grad_proj, out=scratch[:, : sl.stop - sl.start]).sum(dims)
                 for sl in chunks]
            ).view_as(conv_weight)  # fmt: skip
            grad_b = grad_proj.sum().view(1)
        grad_x = _scale(grad, c, s)  # pass 2: the three paths into one tensor, in place
        if grad_mean is not None:
            grad_x += grad_mean
        if grad_proj is not None:
            w = conv_weight.view(1, -1, *[1] * len(spatial))
            for i in range(x.shape[1]):
                grad_x[:, i : i + 1].addcmul_(grad_proj, w[:, i : i + 1])
        return (grad_x, None, None, grad_w, grad_b, *grad_params)


def use_fused_training(x: torch.Tensor) -> bool:
    """Whether the one-node training path applies: gradients wanted, CPU, no tracing."""
    return torch.is_grad_enabled() and not x.is_cuda and not _plain_path()


def squeeze_excite(
    x: torch.Tensor,
    channel_gate: torch.nn.Module | None,
    mlp_params: list[torch.Tensor],
    spatial_gate: torch.nn.Module | None = None,
    conv: torch.nn.Module | None = None,
) -> torch.Tensor:
    """``x * (c + s)`` with ``c = channel_gate(mean(x))`` and ``s = spatial_gate(conv(x))``
    (either part may be absent), as one autograd node. ``spatial_gate`` must be a sigmoid."""
    weight = conv.weight if conv is not None else None
    bias = conv.bias if conv is not None else None
    return _SqueezeExcite.apply(x, channel_gate, spatial_gate, weight, bias, *mlp_params)
