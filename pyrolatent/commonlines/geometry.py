"""Ground truth of common lines for known orientations (to score recovered line angles)."""

from __future__ import annotations

import math

import torch

__all__ = ["true_common_line_angles"]


def true_common_line_angles(rotations: torch.Tensor) -> torch.Tensor:
    """Angle in pattern ``i`` of the line it shares with pattern ``j``, for known rotations.

    The central slices at ``R_i`` and ``R_j`` meet along ``n_i x n_j`` (``n`` the
    slice normals, third columns); its direction in pattern ``i``'s frame is
    ``R_i^T (n_i x n_j)``. Image coordinates are ``(x, y-down)``, and a line at angle
    ``theta`` has the direction ``(cos theta, -sin theta)``, as in
    :func:`pyrolatent.commonlines.similarity_matrix`.

    Parameters
    ----------
    rotations : torch.Tensor
        ``(N, 3, 3)`` orientations of the patterns.

    Returns
    -------
    torch.Tensor
        ``(N, N)`` radians in ``[0, pi)`` (a line has no direction); the diagonal is
        meaningless.
    """
    normals = rotations[:, :, 2]
    n = len(normals)
    d = torch.cross(normals[:, None].expand(n, n, 3), normals[None, :].expand(n, n, 3), dim=-1)
    local = torch.einsum("iba,ijb->ija", rotations, d)
    return torch.atan2(-local[..., 1], local[..., 0]) % math.pi
