"""Memory-lean recalibration arithmetic.

On CPUs the cost of squeeze-and-excitation is not its FLOPs but its full-size temporaries:
``x * (c + s)`` materialises ``c + s`` and the product, each a fresh page-faulting
allocation, and a 1x1 convolution with one output channel first reorders its whole input.
Here both are computed chunk by chunk, so forward allocates only the output and backward
only the input's gradient. Chunks follow the memory layout, so each is one stretch of
memory: channel ranges for contiguous tensors, ranges of the first spatial axis for
channels-last ones (whose sSE projection is then a plain 1x1 convolution: no reorder).
When tracing or compiling (ONNX, torch.export, torch.compile), the plain expressions are
used, with identical results.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CHUNK_ELEMENTS = 1 << 18  # temporaries of at most ~1 MiB (float32) per chunk
CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}  # by tensor ndim


def _axis(x: torch.Tensor) -> int:
    """The axis to chunk along: channels, or the first spatial axis if ``x`` is channels-last."""
    fmt = CHANNELS_LAST.get(x.ndim)
    if fmt is not None and not x.is_contiguous() and x.is_contiguous(memory_format=fmt):
        return 2
    return 1


def _chunks(x: torch.Tensor, axis: int) -> list[slice]:
    size = x.shape[axis]
    per_index = max(1, x.numel() // max(1, size))
    step = max(1, CHUNK_ELEMENTS // per_index)
    return [slice(i, min(i + step, size)) for i in range(0, size, step)]


def _part(t: torch.Tensor, axis: int, sl: slice) -> torch.Tensor:
    """``t``'s piece for chunk ``sl``: sliced where ``t`` spans ``axis``, whole where it
    broadcasts (size 1)."""
    return t if t.shape[axis] == 1 else t.narrow(axis, sl.start, sl.stop - sl.start)


def _buffer(x: torch.Tensor, axis: int, chunks: list[slice]) -> torch.Tensor:
    """One chunk-sized scratch tensor in ``x``'s layout, reused by every chunk."""
    shape = list(x.shape)
    shape[axis] = chunks[0].stop - chunks[0].start
    fmt = CHANNELS_LAST[x.ndim] if axis == 2 else torch.contiguous_format
    return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=fmt)


def _scratch(buffer: torch.Tensor, axis: int, sl: slice) -> torch.Tensor:
    return buffer.narrow(axis, 0, sl.stop - sl.start)


def _reduce_into(target: torch.Tensor, product: torch.Tensor, axis: int, sl: slice) -> None:
    """Adds ``product`` (one chunk) into ``target``, summed over the axes ``target``
    broadcasts along; ``target`` starts at zero."""
    dims = [d for d in range(product.ndim) if target.shape[d] == 1 and product.shape[d] != 1]
    _part(target, axis, sl).add_(product.sum(dims, keepdim=True) if dims else product)


def _reduce_products(x: torch.Tensor, y: torch.Tensor, targets: list[torch.Tensor]) -> None:
    """Adds ``x * y``, formed chunk by chunk in ``x``'s layout, into each of ``targets``
    (zeros of broadcast shapes, e.g. ``(B, C, 1, ...)``), summed over the axes each
    broadcasts along: every gate or weight gradient is such a sum."""
    axis = _axis(x)
    chunks = _chunks(x, axis)
    buffer = _buffer(x, axis, chunks)
    for sl in chunks:
        product = torch.mul(_part(x, axis, sl), _part(y, axis, sl), out=_scratch(buffer, axis, sl))
        for target in targets:
            _reduce_into(target, product, axis, sl)


_CONV = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}  # by tensor ndim


def _plain_scale(x: torch.Tensor, c: torch.Tensor | None, s: torch.Tensor | None) -> torch.Tensor:
    if c is None:
        return x * s
    return x * c if s is None else x * (c + s)


def _differentiable_grads(plain, inputs: tuple, needs: tuple, grad: torch.Tensor) -> list:
    """Gradients by autograd over ``plain(*inputs)``, the plain expression, for a backward
    that is itself differentiated (``create_graph=True``: double backward, gradgradcheck).

    The chunked backward passes write into buffers (``out=``), which autograd cannot
    differentiate; this path costs the full-size temporaries they avoid.
    """
    wanted = [i for i, t in enumerate(inputs) if isinstance(t, torch.Tensor) and needs[i]]
    with torch.enable_grad():
        out = plain(*inputs)
        found = torch.autograd.grad(
            out, [inputs[i] for i in wanted], grad, create_graph=True, allow_unused=True
        )
    grads: list = [None] * len(inputs)
    for i, g in zip(wanted, found, strict=True):
        grads[i] = g
    return grads


def _plain_path() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


def _scale(
    x: torch.Tensor, c: torch.Tensor | None, s: torch.Tensor | None, inplace: bool = False
) -> torch.Tensor:
    """``x * (c + s)`` (either may be None), chunk by chunk, with no temporaries;
    ``inplace`` overwrites ``x`` instead of allocating the output."""
    axis = _axis(x)
    chunks = _chunks(x, axis)
    if inplace:
        buffer = _buffer(x, axis, chunks) if c is not None and s is not None else None
        for sl in chunks:
            xp = _part(x, axis, sl)
            if c is None or s is None:
                xp.mul_(_part(s if c is None else c, axis, sl))
            else:
                cs = _scratch(buffer, axis, sl)
                xp.mul_(torch.add(_part(c, axis, sl), _part(s, axis, sl), out=cs))
        return x
    out = torch.empty_like(x)
    for sl in chunks:
        o, xp = _part(out, axis, sl), _part(x, axis, sl)
        if c is None:
            torch.mul(xp, _part(s, axis, sl), out=o)
            continue
        torch.mul(xp, _part(c, axis, sl), out=o)
        if s is not None:
            o.addcmul_(xp, _part(s, axis, sl))
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
        if torch.is_grad_enabled():
            return tuple(_differentiable_grads(_plain_scale, (x, c, s), ctx.needs_input_grad, grad))
        grad_x = _scale(grad, c, s) if ctx.needs_input_grad[0] else None
        want_c = ctx.has_c and ctx.needs_input_grad[1]
        want_s = ctx.has_s and ctx.needs_input_grad[2]
        grad_c = torch.zeros_like(c) if want_c else None
        grad_s = torch.zeros_like(s) if want_s else None
        if want_c or want_s:
            _reduce_products(x, grad, [g for g in (grad_c, grad_s) if g is not None])
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
        return _plain_scale(x, channel, spatial)
    return _Recalibrate.apply(x, channel, spatial)


class _ChannelProject(torch.autograd.Function):
    """``sum_c w[c] * x[:, c] + b`` -> ``(B, 1, *S)``, without reordering or copying ``x``."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight, bias)
        return _project(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight, bias = ctx.saved_tensors
        if torch.is_grad_enabled():
            conv = _CONV[x.ndim]
            return tuple(_differentiable_grads(conv, (x, weight, bias), ctx.needs_input_grad, grad))
        w = weight.view(1, -1, *[1] * (x.ndim - 2))
        grad_x = grad * w if ctx.needs_input_grad[0] else None
        grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = _weight_grad(x, grad, weight)
        grad_b = grad.sum().view(1) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


def _weight_grad(x: torch.Tensor, grad_out: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Gradient of a C -> 1 1x1 convolution's weight: ``sum(x * grad_out)`` per channel."""
    grad_w = torch.zeros(1, x.shape[1], *[1] * (x.ndim - 2), dtype=x.dtype, device=x.device)
    _reduce_products(x, grad_out, [grad_w])
    return grad_w.view_as(weight)


def channel_project(x: torch.Tensor, conv: torch.nn.Module) -> torch.Tensor:
    """The 1x1 convolution ``conv`` (C -> 1 channel, with bias) applied to ``x``."""
    # cuDNN handles this well, and so does oneDNN on channels-last input; on contiguous
    # CPU input the convolution would first reorder x.
    if _plain_path() or x.is_cuda or _axis(x) == 2:
        return conv(x)
    return _ChannelProject.apply(x, conv.weight, conv.bias)


def _project(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``sum_c weight[c] * x[:, c] + bias`` -> ``(B, 1, *S)``: in place channel by channel,
    or a plain convolution for channels-last ``x``."""
    if _axis(x) == 2:
        return (F.conv2d if x.ndim == 4 else F.conv3d)(x, weight, bias)
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
    channel MLP is differentiated by autograd inside backward. Frozen parameters get no
    gradient; a differentiated backward (double backward) takes the plain expressions.
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
        ctx.gates = (channel_gate, spatial_gate)
        ctx.save_for_backward(x, c, s, conv_weight, conv_bias, *mlp_params)
        return _scale(x, c, s)

    @staticmethod
    def backward(ctx, grad):
        x, c, s, conv_weight, conv_bias, *mlp_params = ctx.saved_tensors
        if torch.is_grad_enabled():
            channel_gate, spatial_gate = ctx.gates

            def plain(x, _c, _s, weight, bias, *params):
                dims = tuple(range(2, x.ndim))
                cw = channel_gate(x.mean(dims, keepdim=True)) if channel_gate else None
                sw = spatial_gate(_CONV[x.ndim](x, weight, bias)) if spatial_gate else None
                return _plain_scale(x, cw, sw)

            inputs = (x, None, None, conv_weight, conv_bias, *mlp_params)
            return tuple(_differentiable_grads(plain, inputs, ctx.needs_input_grad, grad))
        needs = ctx.needs_input_grad
        grad_c = torch.zeros_like(c) if c is not None else None
        grad_s = torch.zeros_like(s) if s is not None else None
        # pass 1: both gates' gradients, sum(grad * x) two ways
        _reduce_products(x, grad, [g for g in (grad_c, grad_s) if g is not None])
        grad_params: tuple = (None,) * len(mlp_params)
        grad_w = grad_b = grad_mean = grad_proj = None
        if c is not None:
            squeezed, gate = ctx.graph
            trained = [i for i in range(len(mlp_params)) if needs[5 + i]]
            # retain_graph: backward may run again (retain_graph=True, gradcheck)
            found = torch.autograd.grad(
                gate, [squeezed, *[mlp_params[i] for i in trained]], grad_c, retain_graph=True,
                allow_unused=True,
            )  # fmt: skip
            grad_mean = found[0] / x[0, 0].numel()  # d mean / d x = 1 / (number of voxels)
            grad_params = tuple(
                found[1 + trained.index(i)] if i in trained else None
                for i in range(len(mlp_params))
            )
        if s is not None:
            grad_proj = grad_s * s * (1 - s)  # through the sigmoid gate
            grad_w = _weight_grad(x, grad_proj, conv_weight) if needs[3] else None
            grad_b = grad_proj.sum().view(1) if needs[4] else None
        grad_x = _scale(grad, c, s)  # pass 2: the three paths into one tensor, in place
        if grad_mean is not None:
            grad_x += grad_mean
        if grad_proj is not None:
            w = conv_weight.view(1, -1, *[1] * (x.ndim - 2))
            axis = _axis(x)
            for sl in _chunks(x, axis):
                _part(grad_x, axis, sl).addcmul_(_part(grad_proj, axis, sl), _part(w, axis, sl))
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
