"""Rotations in 3D: checks, quaternions, axis-angle and uniform random sampling.

Point groups, fundamental zones, misorientation and orientation grids are in
:mod:`pyrolatent.primitives.groups`.

Conventions (see ``DESIGN.md``)
-------------------------------
* Rotations are ``(..., 3, 3)`` matrices acting on column vectors ``(x, y, z)``.
* Quaternions are ``(..., 4)`` in ``(w, x, y, z)`` order; ``q`` and ``-q`` are the
  same rotation and the functions here return ``w >= 0``.
* A point group acts on the *object* (volume) frame. For a central slice taken at
  rotation ``R`` (see :func:`pyrolatent.primitives.volumes.slice_volume`) the slice
  samples ``V(R p)``; if ``V(g v) = V(v)`` then the slices at ``R`` and ``g R`` are
  identical, so the symmetry acts by *left* multiplication.
* Friedel's law ``I(q) = I(-q)`` makes a central slice equal to itself rotated by
  180 degrees in-plane, i.e. the slices at ``R`` and ``R Rz(pi)`` are identical
  (a *right* multiplication). ``friedel=True`` adds that equivalence.
* Improper group elements (mirrors, inversion, as in ``"Oh"``) enter
  misorientation and canonicalisation through their proper part ``-g``, which
  is exact for diffraction intensities (they are centrosymmetric).
"""

from __future__ import annotations

import math

import torch

from .._deprecated import forward
from ..checks import as_tensor, check_finite

__all__ = [
    "check_rotations",
    "matrix_to_quaternion",
    "quaternion_to_matrix",
    "random_rotations",
    "rotation_angle",
    "axis_angle_to_matrix",
    "in_plane_rotations",
    "local_offsets",
    "offset_posterior_mean",
]


def check_rotations(R, name: str = "rotations", atol: float = 1e-3, proper: bool = False):
    """Validate a batch of rotation matrices and return it as a float tensor.

    Parameters
    ----------
    R : array_like
        ``(..., 3, 3)``.
    name : str
        Argument name used in error messages.
    atol : float
        Tolerance on ``R R^T = I`` (and on ``det R = 1`` when ``proper``).
    proper : bool
        Also require ``det R = +1``.

    Raises
    ------
    ValueError
        Wrong shape, NaN/Inf, not orthonormal, or improper when ``proper``.
    """
    t = as_tensor(R, name=name, dtype=None)
    if not t.is_floating_point():
        t = t.float()
    if t.dim() < 2 or tuple(t.shape[-2:]) != (3, 3):
        raise ValueError(f"{name}: expected (..., 3, 3) rotation matrices, got {tuple(t.shape)}")
    check_finite(t, name)
    eye = torch.eye(3, dtype=t.dtype, device=t.device)
    err = (t @ t.transpose(-1, -2) - eye).abs().amax(dim=(-1, -2))
    if bool((err > atol).any()):
        raise ValueError(
            f"{name}: {int((err > atol).sum())} matrices are not orthonormal "
            f"(max |R R^T - I| = {float(err.max()):.3g} > {atol})"
        )
    if proper:
        det = torch.linalg.det(t.double())
        if bool(((det - 1).abs() > atol).any()):
            raise ValueError(f"{name}: expected proper rotations (det = +1), found det = -1")
    return t


def quaternion_to_matrix(q) -> torch.Tensor:
    """Rotation matrices of unit quaternions.

    Parameters
    ----------
    q : array_like
        ``(..., 4)`` quaternions ``(w, x, y, z)``; they are normalised first.

    Returns
    -------
    torch.Tensor
        ``(..., 3, 3)``.
    """
    q = as_tensor(q, name="q", dtype=None)
    if not q.is_floating_point():
        q = q.float()
    if q.shape[-1] != 4:
        raise ValueError(f"q: expected (..., 4) quaternions (w, x, y, z), got {tuple(q.shape)}")
    check_finite(q, "q")
    norm = q.norm(dim=-1, keepdim=True)
    if bool((norm < 1e-12).any()):
        raise ValueError("q: contains zero quaternions")
    w, x, y, z = (q / norm).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_quaternion(R) -> torch.Tensor:
    """Unit quaternions ``(w, x, y, z)`` of rotation matrices, with ``w >= 0``.

    Uses the numerically stable branch (largest of ``w, x, y, z``) per matrix.

    Parameters
    ----------
    R : array_like
        ``(..., 3, 3)`` proper rotations.

    Returns
    -------
    torch.Tensor
        ``(..., 4)``.
    """
    R = check_rotations(R, name="R", proper=True)
    r = R.reshape(-1, 3, 3)
    r00, r01, r02 = r[:, 0, 0], r[:, 0, 1], r[:, 0, 2]
    r10, r11, r12 = r[:, 1, 0], r[:, 1, 1], r[:, 1, 2]
    r20, r21, r22 = r[:, 2, 0], r[:, 2, 1], r[:, 2, 2]
    diag = torch.stack(
        [1 + r00 + r11 + r22, 1 + r00 - r11 - r22, 1 - r00 + r11 - r22, 1 - r00 - r11 + r22],
        dim=-1,
    )
    s = 2 * diag.clamp_min(1e-12).sqrt()  # (M, 4): 4 * the chosen component
    cand = torch.stack(
        [
            torch.stack([s[:, 0] / 4, (r21 - r12) / s[:, 0], (r02 - r20) / s[:, 0],
                         (r10 - r01) / s[:, 0]], -1),
            torch.stack([(r21 - r12) / s[:, 1], s[:, 1] / 4, (r01 + r10) / s[:, 1],
                         (r02 + r20) / s[:, 1]], -1),
            torch.stack([(r02 - r20) / s[:, 2], (r01 + r10) / s[:, 2], s[:, 2] / 4,
                         (r12 + r21) / s[:, 2]], -1),
            torch.stack([(r10 - r01) / s[:, 3], (r02 + r20) / s[:, 3], (r12 + r21) / s[:, 3],
                         s[:, 3] / 4], -1),
        ],
        dim=1,
    )  # fmt: skip  # (M, 4 cases, 4)
    best = diag.argmax(dim=-1)
    q = cand[torch.arange(r.shape[0], device=r.device), best]
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[:, :1] < 0, -q, q)
    return q.reshape(R.shape[:-2] + (4,))


def axis_angle_to_matrix(axis, angle) -> torch.Tensor:
    """Rotation by ``angle`` (radians, right-handed) about ``axis``.

    Parameters
    ----------
    axis : array_like
        ``(..., 3)``, normalised internally.
    angle : array_like
        ``(...)`` radians.

    Returns
    -------
    torch.Tensor
        ``(..., 3, 3)``.
    """
    axis = as_tensor(axis, name="axis", dtype=None)
    if not axis.is_floating_point():
        axis = axis.float()
    angle = as_tensor(angle, name="angle", dtype=axis.dtype, device=axis.device)
    axis = axis / axis.norm(dim=-1, keepdim=True)
    half = angle.unsqueeze(-1) / 2
    q = torch.cat([half.cos(), axis * half.sin()], dim=-1)
    return quaternion_to_matrix(q)


def local_offsets(radius: float, spacing: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A ball of small rotations: rotation vectors on a cubic grid.

    The candidates of a local orientation search about ``R`` are ``R D_k``
    (used by :func:`pyrolatent.spi.emc.local_emc` and the volume VAE's
    ``pose_radius``).

    Parameters
    ----------
    radius : float
        Largest rotation angle (radians).
    spacing : float
        Grid step of the rotation vectors (radians).

    Returns
    -------
    rotations : torch.Tensor
        ``(K, 3, 3)`` float32, the identity first.
    vectors : torch.Tensor
        ``(K, 3)`` their rotation vectors (radians).
    """
    if not (radius > 0 and spacing > 0 and spacing <= radius):
        raise ValueError(f"expected 0 < spacing <= radius, got spacing {spacing}, radius {radius}")
    n = int(math.floor(radius / spacing + 1e-9))
    g = torch.arange(-n, n + 1, dtype=torch.float64) * spacing
    vec = torch.stack(torch.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    vec = vec[vec.norm(dim=1) <= radius + 1e-9]
    vec = vec[torch.argsort(vec.norm(dim=1), stable=True)]
    angle = vec.norm(dim=1)
    axis = torch.where(angle[:, None] > 0, vec / angle.clamp_min(1e-30)[:, None],
                       torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))  # fmt: skip
    return axis_angle_to_matrix(axis, angle).float(), vec.float()


def offset_posterior_mean(
    centres: torch.Tensor, prob: torch.Tensor, vectors: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior-mean rotations over a ball of offsets, and their RMS spread.

    Parameters
    ----------
    centres : torch.Tensor
        ``(N, 3, 3)`` the rotations ``R_n`` the candidates ``R_n D_k`` are about.
    prob : torch.Tensor
        ``(N, K)`` posterior probabilities of the candidates (rows sum to 1).
    vectors : torch.Tensor
        ``(K, 3)`` rotation vectors of the offsets ``D_k`` (see :func:`local_offsets`).

    Returns
    -------
    rotation : torch.Tensor
        ``(N, 3, 3)``: ``R_n`` turned by the mean rotation vector.
    spread : torch.Tensor
        ``(N,)`` RMS distance of the rotation vectors from their mean (radians).
    """
    mean_vec = prob @ vectors
    spread = (prob * (vectors[None] - mean_vec[:, None]).pow(2).sum(-1)).sum(1).sqrt()
    ang = mean_vec.norm(dim=1)
    # a posterior all on the centre (many photons) has no axis: any axis, angle 0
    e_z = torch.tensor([0.0, 0.0, 1.0], dtype=mean_vec.dtype, device=mean_vec.device)
    axis = torch.where(ang[:, None] > 0, mean_vec / ang.clamp_min(1e-12)[:, None], e_z)
    return centres @ axis_angle_to_matrix(axis, ang).to(centres.dtype), spread


def in_plane_rotations(angle) -> torch.Tensor:
    """Rotations by ``angle`` about the beam axis ``z``, ``(N, 3, 3)``.

    Parameters
    ----------
    angle : array_like
        ``(N,)`` radians, counter-clockwise seen from ``+z``.

    Returns
    -------
    torch.Tensor
        ``(N, 3, 3)`` float32 ``[[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]]``.
    """
    alpha = torch.as_tensor(angle, dtype=torch.float32).reshape(-1)
    rot = torch.zeros(len(alpha), 3, 3)
    rot[:, 0, 0], rot[:, 0, 1] = torch.cos(alpha), -torch.sin(alpha)
    rot[:, 1, 0], rot[:, 1, 1] = torch.sin(alpha), torch.cos(alpha)
    rot[:, 2, 2] = 1.0
    return rot


def random_rotations(
    n: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Rotations drawn uniformly (Haar measure) on SO(3) by Shoemake's method.

    Parameters
    ----------
    n : int
        Number of rotations.
    generator : torch.Generator, optional
        Source of randomness (CPU generator), for reproducible draws.
    dtype : torch.dtype
        Output dtype.

    Returns
    -------
    torch.Tensor
        ``(n, 3, 3)``.
    """
    if int(n) < 1:
        raise ValueError(f"n: expected a positive number of rotations, got {n}")
    u = torch.rand(int(n), 3, generator=generator, dtype=torch.float64)
    a, b = (1 - u[:, 0]).sqrt(), u[:, 0].sqrt()
    t1, t2 = 2 * math.pi * u[:, 1], 2 * math.pi * u[:, 2]
    q = torch.stack([b * t2.cos(), a * t1.sin(), a * t1.cos(), b * t2.sin()], dim=-1)
    return quaternion_to_matrix(q).to(dtype=dtype, device=device)


def rotation_angle(R) -> torch.Tensor:
    """Rotation angle in radians, in ``[0, pi]``, of ``(..., 3, 3)`` proper rotations."""
    tr = R.diagonal(dim1=-2, dim2=-1).sum(-1)
    return torch.arccos(((tr - 1) / 2).clamp(-1.0, 1.0))


__getattr__ = forward(
    __name__,
    {
        name: "pyrolatent.primitives.groups"
        for name in (
            "canonicalize",
            "misorientation",
            "orientation_grid",
            "point_group",
            "proper_part",
        )
    },
)
