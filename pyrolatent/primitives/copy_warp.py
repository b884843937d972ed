"""The bilinear warp of ``K`` copies per image, with a backward that skips dead copies.

Under exact enumeration of a rotation grid (``pose="grid"``) each item's
``K`` rendered copies enter the loss through ``log sum_k exp(l_k)``, whose
gradient weighs copy ``k`` by its posterior probability. Image
log-likelihoods of different poses differ by tens to hundreds of nats, so in
float32 most of these weights are exactly zero: on the 48 px shapes of
``benchmarks/rvae.py``, 86% of the copies from the first epoch on. A copy
whose incoming gradient is zero everywhere adds exactly nothing to either
gradient, so the backward here hands ``grid_sample``'s backward only the live
copies, grouped so that each image's live copies keep their order. The
gradients are those of the plain autograd path: bit for bit when ``H W`` is a
multiple of 16 (the kernel's vectors then start at the same pixels), else
equal up to float32 rounding of the image gradient's sums (the same terms
added in another order).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

__all__ = ["copy_warp", "sampling_grid"]

_BILINEAR, _ZEROS = 0, 0


def _base_coords(height: int, width: int, like: torch.Tensor):
    """Normalised pixel-centre coordinates ``xs (W,)`` and ``ys (H,)``."""
    kw = {"dtype": like.dtype, "device": like.device}
    xs = (torch.arange(width, **kw) * 2 + 1) / width - 1
    ys = (torch.arange(height, **kw) * 2 + 1) / height - 1
    return xs, ys


def sampling_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``F.affine_grid(theta, (B, C, H, W), align_corners=False)``, by broadcasting.

    The same contiguous ``(B, H, W, 2)`` grid, computed as one broadcast sum of
    a per-row and a per-column term instead of a batched product with an
    inner dimension of 3 (several times faster on CPUs, forward and backward).
    """
    xs, ys = _base_coords(height, width, theta)
    cols = theta[:, None, :, 0] * xs[:, None]  # (B, W, 2)
    rows = torch.addcmul(theta[:, None, :, 2], theta[:, None, :, 1], ys[:, None])  # (B, H, 2)
    return rows.unsqueeze(2) + cols.unsqueeze(1)


def _copy_grids(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """:func:`sampling_grid` of ``(B, K, 2, 3)`` matrices as one ``(B, K H, W, 2)`` grid.

    The same values, stored coordinate-major (``(B, 2, K H, W)`` in memory) so
    that the broadcast sum runs along image rows: about 5x faster to build
    than the interleaved layout, and ``grid_sample`` reads it faster too.
    """
    b, k = theta.shape[:2]
    xs, ys = _base_coords(height, width, theta)
    t = theta.transpose(1, 2).contiguous()  # (B, 2, K, 3)
    cols = t[..., 0, None] * xs  # (B, 2, K, W)
    rows = torch.addcmul(t[..., 2, None], t[..., 1, None], ys)  # (B, 2, K, H)
    grid = rows.unsqueeze(-1) + cols.unsqueeze(-2)  # (B, 2, K, H, W)
    return grid.reshape(b, 2, k * height, width).permute(0, 2, 3, 1)


def _theta_grad(grad_grid: torch.Tensor) -> torch.Tensor:
    """``(N, 2, 3)`` gradient of :func:`sampling_grid`'s ``theta`` from its grid's ``(N, H, W, 2)``.

    The reductions autograd performs for :func:`sampling_grid`, in its order.
    """
    n, h, w, _ = grad_grid.shape
    xs, ys = _base_coords(h, w, grad_grid)
    rows = grad_grid.sum(2)  # (N, H, 2)
    cols = grad_grid.sum(1)  # (N, W, 2)
    out = grad_grid.new_empty(n, 2, 3)
    out[..., 0] = (cols * xs[:, None]).sum(1)
    out[..., 1] = (rows * ys[:, None]).sum(1)
    out[..., 2] = rows.sum(1)
    return out


class _CopyWarp(torch.autograd.Function):
    """``(B, H, W)`` images, ``(B, K, 2, 3)`` matrices -> ``(B, K, H, W)`` warped copies.

    The forward samples one copy of every image at a time (a grid small enough
    to stay in cache) into a ``(K, B, H, W)`` block, returned as a
    ``(B, K, H, W)`` view; the grids are not kept but rebuilt, for the live
    copies only, in the backward.
    """

    @staticmethod
    def forward(ctx, images, theta):
        h, w = images.shape[1:]
        ctx.save_for_backward(images, theta)
        x = images.unsqueeze(1)
        copies = [
            torch.grid_sampler_2d(x, _copy_grids(theta[:, j : j + 1], h, w), _BILINEAR, _ZEROS,
                                  False).squeeze(1)
            for j in range(theta.shape[1])
        ]  # fmt: skip
        return torch.stack(copies).transpose(0, 1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        images, theta = ctx.saved_tensors
        b, k, h, w = grad.shape
        need = [ctx.needs_input_grad[0], ctx.needs_input_grad[1]]
        if images.device.type != "cpu":
            return _backward(grad, images, theta, need)
        # (B, K): a copy is live unless its gradient is all zero (NaN counts as live)
        live = (grad.amax((-2, -1)) != 0) | (grad.amin((-2, -1)) != 0)
        counts = live.sum(1)
        if bool((counts == k).all()):
            return _backward(grad, images, theta, need)
        grad_images = images.new_zeros(b, h, w) if need[0] else None
        grad_theta = theta.new_zeros(b, k, 2, 3) if need[1] else None
        for m in counts.unique().tolist():
            if m == 0:
                continue
            items = (counts == m).nonzero().squeeze(1)  # (G,)
            copies = live[items].nonzero()[:, 1].reshape(-1, m)  # (G, m), ascending k
            pick = (items[:, None], copies)
            gi, gt = _backward(grad[pick], images[items], theta[pick], need)
            if need[0]:
                grad_images[items] = gi
            if need[1]:
                grad_theta[pick] = gt
        return grad_images, grad_theta


def _backward(grad, images, theta, need):
    """``grid_sample``'s backward for ``(B, K, H, W)`` copies: ``(B, H, W)``, ``(B, K, 2, 3)``."""
    b, k, h, w = grad.shape
    gi, gg = torch.ops.aten.grid_sampler_2d_backward(
        grad.reshape(b, 1, k * h, w), images.unsqueeze(1), _copy_grids(theta, h, w),
        _BILINEAR, _ZEROS, False, need,
    )  # fmt: skip
    gi = gi.squeeze(1) if need[0] else None
    gt = _theta_grad(gg.reshape(b * k, h, w, 2)).reshape(b, k, 2, 3) if need[1] else None
    return gi, gt


def copy_warp(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Warp ``(B, H, W)`` images by ``(B, K, 2, 3)`` ``affine_grid`` matrices: ``(B, K, H, W)``.

    Bilinear, zero padding, ``align_corners=False``; differentiable in both
    arguments (once). The backward skips copies whose gradient is all zero
    (module docstring).
    """
    return _CopyWarp.apply(images, theta)
