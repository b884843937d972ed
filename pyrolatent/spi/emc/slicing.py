"""Expand (sample a volume at rotated detector pixels) and merge (its adjoint).

The volume is ``(S, S, S)`` indexed ``[z, y, x]`` with voxel ``k`` at the centred
coordinate ``k - (S - 1) / 2`` (the convention of
:mod:`pyrolatent.primitives.volumes`; odd ``S``). Both operations use the same
trilinear weights, so :func:`merge` is exactly the transpose of :func:`expand`;
points outside the volume read zero and merge nowhere. The 8 corners are
visited one at a time, so the working memory is ``O(R P)`` for ``R`` rotations
of ``P`` pixels.
"""

from __future__ import annotations

import torch

__all__ = ["expand", "merge", "rotated_points"]


def rotated_points(rotations: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """``(R, P, 3)`` points ``R_r q_t`` for rotations ``(R, 3, 3)`` and pixels ``(P, 3)``."""
    return torch.einsum("rab,pb->rpa", rotations.to(coords.dtype), coords)


def _corners(points: torch.Tensor, size: int):
    """Yield ``(flat_index, weight)`` for the 8 trilinear corners of every point."""
    f = points + (size - 1) / 2  # (..., 3) as fractional indices (x, y, z)
    lo = f.floor()
    frac = f - lo
    lo = lo.long()
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                ix, iy, iz = lo[..., 0] + dx, lo[..., 1] + dy, lo[..., 2] + dz
                w = (frac[..., 0] if dx else 1 - frac[..., 0]) * (
                    frac[..., 1] if dy else 1 - frac[..., 1]
                )
                w = w * (frac[..., 2] if dz else 1 - frac[..., 2])
                inside = (
                    (ix >= 0) & (ix < size) & (iy >= 0) & (iy < size) & (iz >= 0) & (iz < size)
                )
                idx = (iz.clamp(0, size - 1) * size + iy.clamp(0, size - 1)) * size + ix.clamp(
                    0, size - 1
                )
                yield idx, torch.where(inside, w, torch.zeros_like(w))


def expand(volume: torch.Tensor, rotations: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Trilinear samples of a volume at the rotated pixels.

    Parameters
    ----------
    volume : torch.Tensor
        ``(S, S, S)``.
    rotations : torch.Tensor
        ``(R, 3, 3)``.
    coords : torch.Tensor
        ``(P, 3)`` pixel ``q`` vectors in voxels.

    Returns
    -------
    torch.Tensor
        ``(R, P)`` with ``out[r, t] = V(R_r q_t)``.
    """
    size = volume.shape[-1]
    flat = volume.reshape(-1)
    pts = rotated_points(rotations, coords.to(volume.dtype))
    out = torch.zeros(pts.shape[:-1], dtype=volume.dtype, device=volume.device)
    for idx, w in _corners(pts, size):
        out += w * flat[idx]
    return out


def merge(
    values: torch.Tensor,
    rotations: torch.Tensor,
    coords: torch.Tensor,
    size: int,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scatter pixel values at the rotated pixels into a volume (adjoint of :func:`expand`).

    Parameters
    ----------
    values : torch.Tensor
        ``(R, P)`` values per rotation and pixel.
    rotations : torch.Tensor
        ``(R, 3, 3)``.
    coords : torch.Tensor
        ``(P, 3)``.
    size : int
        Volume edge ``S``.
    out : torch.Tensor, optional
        ``(S, S, S)`` accumulator added to in place.

    Returns
    -------
    torch.Tensor
        ``(S, S, S)``, ``out[x] += sum_{r,t} w(x; R_r q_t) values[r, t]``.
    """
    if out is None:
        out = torch.zeros(size, size, size, dtype=values.dtype, device=values.device)
    flat = out.view(-1)
    pts = rotated_points(rotations, coords.to(values.dtype))
    for idx, w in _corners(pts, size):
        flat.index_add_(0, idx.reshape(-1), (w * values).reshape(-1))
    return out
