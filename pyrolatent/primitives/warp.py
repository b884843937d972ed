"""Differentiable image warps through ``affine_grid``/``grid_sample``.

``warp_images(img, angle, offset, scale)`` renders the image whose content has
been moved by the forward similarity transform of
:func:`pyrolatent.primitives.grids.transform_points`: the output pixel at ``p``
samples the input at ``T^{-1}(p)``. Rotation is about the image centre.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .copy_warp import copy_warp, sampling_grid
from .grids import rotation_matrix_2d

__all__ = ["affine_theta", "sampling_grid", "turn_copies", "warp_copies", "warp_images"]


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


def warp_copies(
    images: torch.Tensor,
    angle: torch.Tensor | None = None,
    offset: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """``K`` warped copies of each image, without copying the images first.

    The same result as :func:`warp_images` on ``K`` repeats of each image, but
    the ``K`` sampling grids of an image are stacked along the output rows of
    one ``grid_sample`` call: the input is read in place, and its gradient is
    accumulated into ``(B, H, W)`` instead of ``(B K, H, W)`` (both faster).
    The backward skips copies whose gradient is exactly zero (the poses an
    enumerated posterior rules out), with the same result (bit for bit when
    ``H W`` is a multiple of 16; :mod:`pyrolatent.primitives.copy_warp`).

    Parameters
    ----------
    images : torch.Tensor
        ``(B, H, W)``.
    angle : torch.Tensor, optional
        ``(B, K)`` radians.
    offset : torch.Tensor, optional
        ``(B, K, 2)`` pixels.
    scale : torch.Tensor, optional
        ``(B, K)``.

    Returns
    -------
    torch.Tensor
        ``(B, K, H, W)``: copy ``k`` of image ``b`` warped by pose ``(b, k)``.
    """
    if images.dim() != 3:
        raise ValueError(f"images: expected (B, H, W), got {tuple(images.shape)}")
    ref = next((t for t in (angle, offset, scale) if t is not None), None)
    if ref is None:
        raise ValueError("warp_copies needs at least one of angle, offset, scale")
    b, h, w = images.shape
    k = ref.shape[1]
    flat = [None if t is None else t.reshape(b * k, *t.shape[2:]) for t in (angle, offset, scale)]
    theta = affine_theta(*flat, h, w, batch=b * k, dtype=images.dtype, device=images.device)
    return copy_warp(images, theta.reshape(b, k, 2, 3))


def turn_copies(images: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Every image turned by each of the same ``K`` angles, one sampling grid per angle.

    The images are the channels of one ``grid_sample`` call per turn, so the
    ``K`` grids are ``(K, H, W, 2)`` whatever the number of images, and the
    bilinear weights are computed once per turn (about 2x faster than
    :func:`warp_copies` with per-image grids).

    Parameters
    ----------
    images : torch.Tensor
        ``(B, H, W)``.
    turns : torch.Tensor
        ``(K,)`` radians, counter-clockwise as displayed, about the image centre.

    Returns
    -------
    torch.Tensor
        ``(K, B, H, W)``: copy ``k`` of every image turned by ``turns[k]``.
    """
    if images.dim() != 3 or turns.dim() != 1:
        raise ValueError(
            f"images (B, H, W) and turns (K,) expected, got {tuple(images.shape)} and "
            f"{tuple(turns.shape)}"
        )
    b, h, w = images.shape
    k = turns.shape[0]
    theta = affine_theta(turns.to(images.dtype), None, None, h, w)
    grid = sampling_grid(theta, h, w)  # (K, H, W, 2)
    return F.grid_sample(images.unsqueeze(0).expand(k, b, h, w), grid, mode="bilinear",
                         padding_mode="zeros", align_corners=False)  # fmt: skip
