"""The classifier's antialiased bilinear resize, with a fast exact gradient for large images.

Forward is ``F.interpolate(..., mode="bilinear", antialias=True)`` itself, so the model
sees bitwise what it always saw. The resize is linear and separable, out = Wh @ X @ Ww^T
per channel, so its gradient is Wh^T @ G @ Ww. torch's own CPU backward walks the whole
2-D filter support for every output pixel (about 58 x 32 taps for a 4688x2592 mammogram
going to 160x160), which made the resize's gradient most of a PGD step on a mammogram.
Each row of Wh^T has at most a few non-zero taps, and consecutive input rows share the
same few output rows, so Wh^T @ B is done as one small matrix product per band of input
rows, written straight into the gradient: the same products and sums, a fraction of the
time. The weights are torch's own: read off by resizing unit impulses (a separable pass
of size 2 -> 2 is the identity), so they are exactly what the forward used.

Only for CPU tensors that need a gradient and have at least :data:`FAST_BACKWARD_PIXELS`
pixels; everything else (CUDA, inference, small photos) is the plain call.
"""

from __future__ import annotations

import functools
from typing import Any

FAST_BACKWARD_PIXELS = 1 << 20  # below ~1 megapixel torch's own backward costs little


def antialiased_resize(x: Any, size: tuple[int, int]) -> Any:
    """``x`` (N x C x H x W) resized to ``size`` = (h, w), bilinear with antialiasing."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    h, w = int(size[0]), int(size[1])
    if (x.device.type == "cpu" and x.requires_grad and torch.is_grad_enabled()
            and x.dtype in (torch.float32, torch.float64)
            and x.shape[-2] * x.shape[-1] >= FAST_BACKWARD_PIXELS):
        return _resize_function().apply(x, h, w)
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False,
                         antialias=True)


@functools.cache
def _resize_function() -> type:
    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch.autograd.function import once_differentiable

    class _AntialiasedResize(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, h: int, w: int) -> Any:
            ctx.in_size = (x.shape[-2], x.shape[-1])
            ctx.dtype = x.dtype
            return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False,
                                 antialias=True)

        @staticmethod
        @once_differentiable
        def backward(ctx: Any, grad_out: Any) -> tuple[Any, None, None]:
            big_h, big_w = ctx.in_size
            h, w = grad_out.shape[-2:]
            bands = _row_bands(big_h, h, ctx.dtype)
            ww = _weights(big_w, w, ctx.dtype)  # w x W
            g = grad_out.to(ctx.dtype)
            lead = g.shape[:-2]
            planes = g.reshape(-1, h, w) @ ww  # (N*C) x h x W: the cheap half first
            grad = torch.empty((planes.shape[0], big_h, big_w), dtype=ctx.dtype)
            for p in range(planes.shape[0]):
                plane, out = planes[p], grad[p]
                for r0, r1, c0, c1, taps in bands:
                    torch.mm(taps, plane[c0:c1], out=out[r0:r1])
            return grad.reshape(*lead, big_h, big_w), None, None

    return _AntialiasedResize


@functools.lru_cache(maxsize=16)
def _weights(n_in: int, n_out: int, dtype: Any) -> Any:
    """torch's antialiased bilinear weights from ``n_in`` to ``n_out`` samples along one
    axis, as an n_out x n_in matrix, read off by resizing impulses.

    Output i only sees inputs j with |j - centre_i| <= support + 1/2 (centre_i =
    (i + 1/2) * scale, support = max(scale, 1)), so impulses ``period`` > 2 * support + 1
    apart never meet in one output: impulse j goes in channel j % period, and output i of
    channel c is the weight of the one such j nearest centre_i. One resize of ``period``
    channels instead of one per input sample."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    scale = n_in / n_out
    period = int(2 * max(scale, 1.0)) + 4
    if period >= n_in:
        period = n_in  # each impulse in a channel of its own
    j = torch.arange(n_in)
    probe = torch.zeros((1, period, n_in, 2), dtype=dtype)
    probe[0, j % period, j, :] = 1.0
    with torch.no_grad():
        values = F.interpolate(probe, size=(n_out, 2), mode="bilinear",
                               align_corners=False, antialias=True)[0, :, :, 0]
    c = torch.arange(period, dtype=torch.float64)[:, None]
    if period == n_in:
        nearest = c.expand(period, n_out)
    else:
        centre = (torch.arange(n_out, dtype=torch.float64)[None, :] + 0.5) * scale
        nearest = c + period * torch.round((centre - c) / period)
    rows = torch.arange(n_out)[None, :].expand(period, n_out)
    keep = (nearest >= 0) & (nearest < n_in) & (values != 0)
    weights = torch.zeros((n_out, n_in), dtype=dtype)
    weights[rows[keep], nearest[keep].long()] = values[keep]
    return weights


@functools.lru_cache(maxsize=16)
def _row_bands(n_in: int, n_out: int, dtype: Any) -> list[tuple[int, int, int, int, Any]]:
    """Wh^T (n_in x n_out) cut into bands of consecutive input rows whose non-zero taps
    start at the same output row: (first row, end row, first tap, end tap, the band's
    taps as a small dense matrix)."""
    wt = _weights(n_in, n_out, dtype).t().contiguous()  # n_in x n_out
    nz = wt != 0
    count = nz.sum(dim=1)
    first = nz.to(wt.dtype).argmax(dim=1)  # rows with no tap keep 0 (their taps are 0)
    span = max(int(count.max()), 1)
    starts = first.tolist()
    bands = []
    r0 = 0
    while r0 < n_in:
        r1 = r0 + 1
        while r1 < n_in and starts[r1] == starts[r0]:
            r1 += 1
        c0 = min(starts[r0], n_out - span)
        c1 = c0 + span
        bands.append((r0, r1, c0, c1, wt[r0:r1, c0:c1].contiguous()))
        r0 = r1
    return bands
