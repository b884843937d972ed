"""Rotations in 3D: quaternions, uniform sampling, orientation grids and point groups.

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

import itertools
import math
import re

import torch

from ..validation import as_tensor, check_finite

__all__ = [
    "canonicalize",
    "check_rotations",
    "matrix_to_quaternion",
    "misorientation",
    "orientation_grid",
    "point_group",
    "proper_part",
    "quaternion_to_matrix",
    "random_rotations",
    "rotation_angle",
    "axis_angle_to_matrix",
]

# Plastic-number-like constant of the Super-Fibonacci spiral (psi**4 = psi + 4).
_SUPER_FIB_PSI = 1.533751168755204288118041
_SUPER_FIB_PHI = math.sqrt(2.0)


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


def _signed_permutations(proper_only: bool, cyclic_only: bool = False) -> torch.Tensor:
    mats = []
    for perm in itertools.permutations(range(3)):
        p = torch.zeros(3, 3, dtype=torch.float64)
        p[range(3), perm] = 1.0
        if cyclic_only and round(float(torch.linalg.det(p))) != 1:
            continue
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = torch.diag(torch.tensor(signs, dtype=torch.float64)) @ p
            if proper_only and round(float(torch.linalg.det(m))) != 1:
                continue
            mats.append(m)
    return torch.stack(mats)


def _rz(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def point_group(
    name: str, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> torch.Tensor:
    """The matrices of a crystallographic/molecular point group.

    Parameters
    ----------
    name : str
        ``"C<n>"`` (n-fold axis along z), ``"D<n>"`` (plus n two-fold axes in the
        xy plane, the first along x), ``"T"`` (12 rotations of the tetrahedron,
        three-fold axes along the cube diagonals), ``"O"`` (24 rotations of the
        cube, axes along x, y, z) or ``"Oh"`` (48: ``"O"`` with inversion and
        mirrors; the only group here with improper elements). ``"C1"`` is the
        identity.

    Returns
    -------
    torch.Tensor
        ``(G, 3, 3)``; the identity comes first.

    Raises
    ------
    ValueError
        Unknown group name.
    """
    if not isinstance(name, str):
        raise ValueError(f"group: expected a group name string, got {type(name).__name__}")
    key = name.strip()
    m = re.fullmatch(r"([CD])(\d+)", key)
    if m:
        n = int(m.group(2))
        if n < 1:
            raise ValueError(f"group {name!r}: the order n must be >= 1")
        cn = [_rz(2 * math.pi * k / n) for k in range(n)]
        mats = cn
        if m.group(1) == "D":
            flip_x = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))
            mats = cn + [_rz(math.pi * k / n) @ flip_x @ _rz(-math.pi * k / n) for k in range(n)]
        out = torch.stack(mats)
    elif key == "T":
        out = _signed_permutations(proper_only=True, cyclic_only=True)
    elif key == "O":
        out = _signed_permutations(proper_only=True)
    elif key == "Oh":
        out = _signed_permutations(proper_only=False)
    else:
        raise ValueError(
            f"group: unknown point group {name!r}; expected 'C<n>', 'D<n>', 'T', 'O' or 'Oh'"
        )
    # identity first, then the rest in a stable order
    eye = torch.eye(3, dtype=torch.float64)
    is_eye = (out - eye).abs().amax(dim=(-1, -2)) < 1e-9
    out = torch.cat([out[is_eye][:1], out[~is_eye]])
    out = torch.where(out.abs() < 1e-12, torch.zeros_like(out), out)
    return out.to(dtype=dtype, device=device)


def _as_group(group, dtype, device) -> torch.Tensor:
    if isinstance(group, str):
        return point_group(group, dtype=dtype, device=device)
    g = check_rotations(group, name="group")
    if g.dim() != 3:
        raise ValueError(f"group: expected a name or (G, 3, 3) matrices, got {tuple(g.shape)}")
    return g.to(dtype=dtype, device=device)


def proper_part(group) -> torch.Tensor:
    """Proper rotations of a group: improper ``g`` are replaced by ``-g``, duplicates removed.

    ``group`` is a name (see :func:`point_group`) or ``(G, 3, 3)`` matrices.
    """
    g = _as_group(group, torch.float64, None)
    det = torch.linalg.det(g)
    g = torch.where(det.reshape(-1, 1, 1) < 0, -g, g)
    keep = []
    for i in range(g.shape[0]):
        if all((g[i] - g[j]).abs().max() > 1e-6 for j in keep):
            keep.append(i)
    return g[keep]


def _equivalents(group, friedel: bool, dtype, device):
    """Left factors ``(G,3,3)`` and right factors ``(H,3,3)`` of the equivalence class."""
    left = proper_part(group).to(dtype=dtype, device=device)
    right = [torch.eye(3, dtype=torch.float64)]
    if friedel:
        right.append(_rz(math.pi))
    return left, torch.stack(right).to(dtype=dtype, device=device)


def canonicalize(R, group, friedel: bool = False, return_index: bool = False):
    """Map rotations into the fundamental zone of a point group.

    The representative of ``{g R h}`` (``g`` in the group's proper part, ``h`` in
    ``{I, Rz(pi)}`` when ``friedel``) is the one closest to the identity (largest
    trace), i.e. the fundamental zone is the Voronoi cell of the identity.

    Parameters
    ----------
    R : array_like
        ``(..., 3, 3)`` proper rotations.
    group : str or array_like
        Group name (see :func:`point_group`) or ``(G, 3, 3)`` matrices.
    friedel : bool
        Also identify ``R`` with ``R Rz(pi)`` (central slices obey Friedel's law).
    return_index : bool
        Also return the index of the chosen ``g`` (and of ``h`` as ``g_index * H + h``).

    Returns
    -------
    torch.Tensor
        ``(..., 3, 3)`` canonical rotations (and ``(...)`` long indices).
    """
    R = check_rotations(R, name="R", proper=True)
    left, right = _equivalents(group, friedel, R.dtype, R.device)
    r = R.reshape(-1, 3, 3)
    n_right = right.shape[0]
    # every candidate g R h (k = g_index * H + h_index) is linear in R, and so are its
    # trace and the tie-break score below: precompute both as (9, K) matrices
    g_k = left.repeat_interleave(n_right, dim=0)
    h_k = right.repeat(left.shape[0], 1, 1)
    trace_op = (h_k @ g_k).transpose(-1, -2).reshape(-1, 9).T
    # the vector part of a candidate's quaternion, 4w (x, y, z), mixed with fixed weights:
    # ties in trace (the identity has a stabiliser when h is in G) are broken by it
    w = torch.tensor([[0.0, -0.1, 0.3], [0.1, 0.0, -1.0], [-0.3, 1.0, 0.0]], dtype=R.dtype)
    w = w.to(R.device)
    tie_op = (g_k.transpose(-1, -2) @ w @ h_k.transpose(-1, -2)).reshape(-1, 9).T
    tol = 1e-9 if R.dtype == torch.float64 else 2e-5
    idx = torch.empty(r.shape[0], dtype=torch.long, device=R.device)
    for start in range(0, r.shape[0], 65536):
        flat = r[start : start + 65536].reshape(-1, 9)
        tr = flat @ trace_op
        score = flat @ tie_op
        near_best = tr >= tr.amax(-1, keepdim=True) - tol
        idx[start : start + 65536] = torch.where(near_best, score, -math.inf).argmax(-1)
    out = g_k[idx] @ r @ h_k[idx]
    out = out.reshape(R.shape)
    if return_index:
        return out, idx.reshape(R.shape[:-2])
    return out


def misorientation(R1, R2, group=None, friedel: bool = False) -> torch.Tensor:
    """Smallest rotation angle between two orientations modulo a symmetry group.

    ``min over g, h of angle(R1^T g R2 h)`` with ``g`` in the group's proper part
    and ``h`` in ``{I, Rz(pi)}`` when ``friedel`` (see the module notes).

    Parameters
    ----------
    R1, R2 : array_like
        ``(..., 3, 3)`` proper rotations (broadcast against each other).
    group : str or array_like, optional
        Group name or ``(G, 3, 3)`` matrices; ``None`` means no symmetry.
    friedel : bool
        Identify ``R`` with ``R Rz(pi)``.

    Returns
    -------
    torch.Tensor
        ``(...)`` angles in radians, in ``[0, pi]``.
    """
    R1 = check_rotations(R1, name="R1", proper=True)
    R2 = check_rotations(R2, name="R2", proper=True).to(dtype=R1.dtype, device=R1.device)
    left, right = _equivalents("C1" if group is None else group, friedel, R1.dtype, R1.device)
    a = R1.transpose(-1, -2).unsqueeze(-3) @ left  # (..., G, 3, 3)
    b = R2.unsqueeze(-3) @ right  # (..., H, 3, 3)
    # trace(R1^T g R2 h) for every (g, h)
    tr = torch.einsum("...gij,...hji->...gh", a, b).flatten(-2).amax(-1)
    return torch.arccos(((tr - 1) / 2).clamp(-1.0, 1.0))


def orientation_grid(
    n: int,
    group=None,
    friedel: bool = False,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> torch.Tensor:
    """A near-uniform deterministic set of rotations (Super-Fibonacci spiral).

    Parameters
    ----------
    n : int
        Number of rotations covering SO(3) (``group=None``), or the approximate
        number inside the fundamental zone when ``group`` is given.
    group : str or array_like, optional
        Keep only the rotations inside this group's fundamental zone (see
        :func:`canonicalize`); the spiral is then built with ``n * |G|`` points
        (``n * 2 |G|`` with ``friedel``) so the zone holds about ``n``.
    friedel : bool
        Use the Friedel-reduced fundamental zone.

    Returns
    -------
    torch.Tensor
        ``(n', 3, 3)`` with ``n' = n`` without a group, ``n' ~ n`` with one.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"n: expected a positive grid size, got {n}")
    factor = 1
    if group is not None or friedel:
        left, right = _equivalents("C1" if group is None else group, friedel, torch.float64, None)
        factor = left.shape[0] * right.shape[0]
    m = n * factor
    s = torch.arange(m, dtype=torch.float64) + 0.5
    r = (s / m).sqrt()
    big_r = (1 - s / m).sqrt()
    alpha = 2 * math.pi * s / _SUPER_FIB_PHI
    beta = 2 * math.pi * s / _SUPER_FIB_PSI
    q = torch.stack([r * alpha.sin(), r * alpha.cos(), big_r * beta.sin(), big_r * beta.cos()], -1)
    rot = quaternion_to_matrix(q)
    if factor > 1:
        canon = canonicalize(rot, "C1" if group is None else group, friedel=friedel)
        inside = (canon - rot).abs().amax(dim=(-1, -2)) < 1e-9
        rot = rot[inside]
    return rot.to(dtype=dtype, device=device)
