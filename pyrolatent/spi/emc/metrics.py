"""Quality of a 3D reconstruction: alignment to a truth, shell correlations, orientation errors.

EMC recovers the intensity only up to a global rotation ``G``: the reconstruction
``V`` satisfies ``V(G x) = V_true(x)``. :func:`align_volume` finds ``G`` by
maximising the correlation of ``V(G x)`` with the truth over an orientation grid,
then refining locally; :func:`shell_correlation` compares the aligned volumes
shell by shell in ``|q|``, and :func:`orientation_errors` maps the per-frame
orientations through ``G`` (frame ``n`` samples ``V(R_n q) = V_true(G^T R_n q)``)
and measures their angle to the truth, modulo Friedel's ``R Rz(pi)`` (and a point
group when given).
"""

from __future__ import annotations

import math

import torch

from ...primitives.groups import misorientation
from ...primitives.so3 import axis_angle_to_matrix, quaternion_to_matrix
from ...primitives.volumes import volume_coordinates
from .quaternions import quaternion_grid
from .slicing import expand

__all__ = ["align_volume", "orientation_errors", "rotate_volume", "shell_correlation"]


def _points(size: int, r_min: float, r_max: float, stride: int):
    pts = volume_coordinates(size).reshape(-1, 3)
    r = pts.norm(dim=1)
    keep = (r >= r_min) & (r <= r_max)
    return pts[keep][::stride]


def _ncc(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each row of ``a`` ``(R, P)`` with ``b`` ``(P,)``."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean()
    return (a @ b) / (a.norm(dim=1) * b.norm()).clamp_min(1e-30)


def align_volume(
    volume, reference, level: int = 4, r_min: float = 2.0, r_max: float | None = None,
    refine_steps: int = 6, refine_samples: int = 64, log: bool = True, seed: int = 0,
):  # fmt: skip
    """Rotation ``G`` that best maps ``reference`` onto ``volume``: ``volume(G x) ~ reference(x)``.

    Parameters
    ----------
    volume, reference : torch.Tensor
        ``(S, S, S)`` intensities (same odd ``S``).
    level : int
        Quaternion-grid level of the global search.
    r_min, r_max : float
        Shell of voxels compared (default ``r_max = (S - 1) / 2``). Align on the
        shells that are then compared: poorly measured outer shells can pull ``G``
        off (600 frames of a 21^3 atom cloud: lowest shell CC to 3/4 of the edge
        0.35 aligned on all shells, 0.86 aligned on those).
    refine_steps, refine_samples : int
        Local refinement: rounds of random rotations around the best, halving the radius.
    log : bool
        Compare ``log(I + eps)`` (weighs all resolutions) instead of ``I``.
    seed : int
        Seed of the refinement's random candidates.

    Returns
    -------
    rotation : torch.Tensor
        ``(3, 3)`` ``G``.
    cc : float
        The correlation at ``G``.
    """
    v = torch.as_tensor(volume, dtype=torch.float32)
    ref = torch.as_tensor(reference, dtype=torch.float32)
    size = v.shape[-1]
    r_max = (size - 1) / 2 if r_max is None else float(r_max)
    stride = max(1, int(_points(size, r_min, r_max, 1).shape[0] // 20000))
    pts = _points(size, r_min, r_max, stride)
    centre = (pts + (size - 1) / 2).round().long()
    target = ref[centre[:, 2], centre[:, 1], centre[:, 0]]

    def tr(x):
        return torch.log(x.clamp_min(0) + 1e-3 * float(x.max())) if log else x

    target = tr(target)
    quats, _ = quaternion_grid(level, dtype=torch.float64)
    grid = quaternion_to_matrix(quats).float()
    best_cc, best = -math.inf, None
    for a in range(0, grid.shape[0], 256):
        cc = _ncc(tr(expand(v, grid[a : a + 256], pts)), target)
        i = int(cc.argmax())
        if float(cc[i]) > best_cc:
            best_cc, best = float(cc[i]), grid[a + i]
    gen = torch.Generator().manual_seed(int(seed))
    radius = 0.944 / level
    for _ in range(int(refine_steps)):
        axes = torch.randn(refine_samples, 3, generator=gen)
        ang = radius * torch.rand(refine_samples, generator=gen) ** (1 / 3)
        cand = best[None] @ axis_angle_to_matrix(axes, ang)
        cc = _ncc(tr(expand(v, cand, pts)), target)
        i = int(cc.argmax())
        if float(cc[i]) > best_cc:
            best_cc, best = float(cc[i]), cand[i]
        radius /= 2
    return best, best_cc


def rotate_volume(volume, rotation) -> torch.Tensor:
    """``W(x) = V(G x)`` on the same grid (trilinear), e.g. to align a reconstruction."""
    v = torch.as_tensor(volume, dtype=torch.float32)
    size = v.shape[-1]
    pts = volume_coordinates(size).reshape(-1, 3)
    g = torch.as_tensor(rotation, dtype=torch.float32).reshape(1, 3, 3)
    return expand(v, g, pts).reshape(size, size, size)


def shell_correlation(a, b, r_min: float = 0.0, r_max: float | None = None, width: float = 1.0):
    """Pearson correlation of two volumes in shells of ``|q|``.

    Parameters
    ----------
    a, b : array_like
        ``(S, S, S)`` volumes on the same grid.
    r_min, r_max : float
        Radial range in voxels (default ``r_max = (S - 1) / 2``).
    width : float
        Shell width in voxels.

    Returns
    -------
    radii : torch.Tensor
        ``(K,)`` mid radius of each shell.
    cc : torch.Tensor
        ``(K,)`` correlation per shell.
    """
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    size = a.shape[-1]
    r_max = (size - 1) / 2 if r_max is None else float(r_max)
    r = volume_coordinates(size, dtype=torch.float64).norm(dim=-1)
    edges = torch.arange(float(r_min), r_max + 1e-9, float(width), dtype=torch.float64)
    radii, ccs = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (r >= lo) & (r < hi)
        if int(sel.sum()) < 3:
            continue
        x, y = a[sel] - a[sel].mean(), b[sel] - b[sel].mean()
        ccs.append(float((x * y).sum() / (x.norm() * y.norm()).clamp_min(1e-30)))
        radii.append(float((lo + hi) / 2))
    return torch.tensor(radii), torch.tensor(ccs)


def _polar(m: torch.Tensor) -> torch.Tensor:
    """Closest proper rotation to a 3x3 matrix (SVD)."""
    u, _, vt = torch.linalg.svd(m)
    d = torch.sign(torch.linalg.det(u @ vt))
    return u @ torch.diag(torch.tensor([1.0, 1.0, float(d)], dtype=m.dtype)) @ vt


def orientation_errors(
    estimated, truth, alignment=None, group=None, friedel: bool = True, fit: bool = False,
    inlier_deg: float = 20.0,
):  # fmt: skip
    """Angles (radians) between estimated and true frame orientations.

    Parameters
    ----------
    estimated : array_like
        ``(N, 3, 3)`` orientations in the reconstruction's frame.
    truth : array_like
        ``(N, 3, 3)`` true orientations.
    alignment : array_like, optional
        ``(3, 3)`` ``G`` from :func:`align_volume` (``volume(G x) = truth(x)``);
        default the identity.
    group : str, optional
        Point group of the truth, if any.
    friedel : bool
        Identify ``R`` with ``R Rz(pi)`` (identical central slices of a
        centrosymmetric intensity on a flat detector).
    fit : bool
        Refine the alignment from the orientations themselves (no group):
        ``G = polar(sum_n R_est,n R_true,n^T)`` over frames within ``inlier_deg``,
        three rounds, each frame's Friedel twin chosen to match. The global frame
        of a reconstruction is arbitrary, so this removes the volume-alignment
        error from the per-frame errors.
    inlier_deg : float
        Inlier threshold of ``fit``.

    Returns
    -------
    torch.Tensor
        ``(N,)`` radians.
    """
    est = torch.as_tensor(estimated, dtype=torch.float64)
    tru = torch.as_tensor(truth, dtype=torch.float64)
    g = torch.eye(3, dtype=torch.float64) if alignment is None else (
        torch.as_tensor(alignment, dtype=torch.float64))  # fmt: skip
    if fit and group is None:
        twin = torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64))
        for _ in range(3):
            mapped = g.T @ est
            err = misorientation(tru, mapped)
            if friedel:
                err_t = misorientation(tru, mapped @ twin)
                use = (err_t < err)[:, None, None]
                est_f = torch.where(use, est @ twin, est)
                err = torch.minimum(err, err_t)
            else:
                est_f = est
            keep = err < math.radians(inlier_deg)
            if int(keep.sum()) < 3:
                break
            g = _polar((est_f[keep] @ tru[keep].transpose(1, 2)).sum(0))
    return misorientation(tru, g.T @ est, group=group, friedel=friedel)
