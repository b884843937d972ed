"""Differentiable image warps through ``affine_grid``/``grid_sample``.

``warp_images(img, angle, offset, scale)`` renders the image whose content has
been moved by the forward similarity transform of
:func:`pyrolatent.primitives.grids.transform_points`: the output pixel at ``p``
samples the input at ``T^{-1}(p)``. Rotation is about the image centre.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .grids import rotation_matrix_2d

__all__ = ["affine_theta", "sampling_grid", "warp_images"]


def sampling_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``F.affine_grid(theta, (B, C, H, W), align_corners=False)``, by broadcasting.

    The same ``(B, H, W, 2)`` grid, computed as two multiply-adds per pixel
    instead of a batched product with an inner dimension of 3 (several times
    faster on CPUs, forward and backward).
    """
    kw = {"dtype": theta.dtype, "device": theta.device}
    xs = (torch.arange(width, **kw) * 2 + 1) / width - 1  # (W,)
    ys = (torch.arange(height, **kw) * 2 + 1) / height - 1  # (H,)
    t = theta.unsqueeze(-1).unsqueeze(-1)  # (B, 2, 3, 1, 1)
    grid = t[:, :, 0] * xs + t[:, :, 1] * ys.unsqueeze(-1) + t[:, :, 2]  # (B, 2, H, W)
    return grid.permute(0, 2, 3, 1)


def affine_theta(
    angle: torch.Tensor | None,
    offset: torch.Tensor | None,
    scale: torch.Tensor | None,
    height: int,
    width: int,
    batch: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> torch.Tensor:
    """The ``(B, 2, 3)`` matrix for ``F.affine_grid`` that applies ``T^{-1}``.

    ``T`` is ``p' = scale * R(angle) p + offset`` in centred pixel units
    (see :mod:`pyrolatent.primitives.grids`); the returned matrix acts on
    normalised output coordinates and gives normalised input coordinates.
    """
    ref = next((t for t in (angle, offset, scale) if t is not None), None)
    if ref is not None:
        batch, dtype, device = ref.shape[0], ref.dtype, ref.device
    if batch is None:
        raise ValueError("affine_theta needs a transform parameter or an explicit batch size")
    eye = torch.eye(2, dtype=dtype, device=device).expand(batch, 2, 2)
    a = rotation_matrix_2d(-angle) if angle is not None else eye
    if scale is not None:
        a = a / scale.reshape(-1, 1, 1)
    b = torch.zeros(batch, 2, dtype=dtype, device=device)
    if offset is not None:
        b = -(a @ offset.unsqueeze(-1)).squeeze(-1)
    d = torch.tensor([2.0 / width, 2.0 / height], dtype=dtype, device=device)
    # conjugate by D = diag(2/W, 2/H): pixel -> normalised
    a_n = a * d.reshape(1, 2, 1) / d.reshape(1, 1, 2)
    b_n = b * d
    return torch.cat([a_n, b_n.unsqueeze(-1)], dim=-1)


def warp_images(
    images: torch.Tensor,
    angle: torch.Tensor | None = None,
    offset: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Rotate, shift and scale a batch of images.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, H, W)`` or ``(B, C, H, W)``.
    angle : torch.Tensor, optional
        ``(B,)`` radians, counter-clockwise as displayed.
    offset : torch.Tensor, optional
        ``(B, 2)`` ``(dx, dy)`` pixels (``dx`` along columns, ``dy`` down the rows).
    scale : torch.Tensor, optional
        ``(B,)`` magnification.
    mode, padding_mode : str
        Passed to ``torch.nn.functional.grid_sample``.

    Returns
    -------
    torch.Tensor
        Same shape as ``images``.
    """
    squeeze = images.dim() == 3
    x = images.unsqueeze(1) if squeeze else images
    if x.dim() != 4:
        raise ValueError(f"images: expected (B, H, W) or (B, C, H, W), got {tuple(images.shape)}")
    b, _, h, w = x.shape
    theta = affine_theta(angle, offset, scale, h, w, batch=b, dtype=x.dtype, device=x.device)
    grid = sampling_grid(theta, h, w)
    out = F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
    return out.squeeze(1) if squeeze else out
