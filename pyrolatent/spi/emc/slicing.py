"""Expand (sample a volume at rotated detector pixels) and merge (its adjoint).

The volume is ``(S, S, S)`` indexed ``[z, y, x]`` with voxel ``k`` at the centred
coordinate ``k - (S - 1) / 2`` (the convention of
:mod:`pyrolatent.primitives.volumes`; odd ``S``). Both operations use the same
trilinear weights (``torch.nn.functional.grid_sample``, zero padding), so
:func:`merge`, computed as the gradient of the sampling, is exactly the transpose
of :func:`expand`; points outside the volume read zero and merge nowhere. The
working memory is ``O(R P)`` for ``R`` rotations of ``P`` pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["expand", "merge", "rotated_points"]


def rotated_points(rotations: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """``(R, P, 3)`` points ``R_r q_t`` for rotations ``(R, 3, 3)`` and pixels ``(P, 3)``."""
    return torch.einsum("rab,pb->rpa", rotations.to(coords.dtype), coords)


def _grid(rotations: torch.Tensor, coords: torch.Tensor, size: int) -> torch.Tensor:
    """``grid_sample`` grid ``(1, R, P, 1, 3)`` of the rotated pixels (``align_corners=False``)."""
    pts = rotated_points(rotations, coords)
    return (pts * (2.0 / size)).reshape(1, pts.shape[0], pts.shape[1], 1, 3)


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
    grid = _grid(rotations, coords.to(volume.dtype), volume.shape[-1])
    out = F.grid_sample(volume[None, None], grid, mode="bilinear", align_corners=False)
    return out.reshape(rotations.shape[0], coords.shape[0])


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
    grid = _grid(rotations, coords.to(values.dtype), size)
    with torch.enable_grad():
        base = torch.zeros(1, 1, size, size, size, dtype=values.dtype, device=values.device,
                           requires_grad=True)  # fmt: skip
        sampled = F.grid_sample(base, grid, mode="bilinear", align_corners=False)
        (adj,) = torch.autograd.grad(sampled, base, grad_outputs=values.reshape(sampled.shape))
    out += adj[0, 0]
    return out
