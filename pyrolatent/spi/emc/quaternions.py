"""Dragonfly's orientation grid: the refined 600-cell on the unit quaternion sphere.

Loh & Elser (2009) and Dragonfly (Ayyer et al. 2016) sample SO(3) by refining the
600-cell, the regular 4D polytope with 120 vertices, 720 edges, 1200 triangular
faces and 600 tetrahedral cells inscribed in the unit 3-sphere. At refinement
level ``n`` every cell is divided into a tetrahedral lattice of spacing ``1 / n``
of its edge; the lattice points (on vertices, edges, faces and cell interiors)
are projected onto the sphere. The 120 vertices come in antipodal pairs ``q`` and
``-q`` (the same rotation), and so do the lattice points, so half of them are
kept: ``10 (5 n^3 + n)`` rotations (60, 420, 1,380, 3,240, 6,300, 10,860, ... for
``n = 1, 2, 3, 4, 5, 6``), with an angular spacing of about ``0.944 / n`` radians.

The weights are Dragonfly's: the density of the projected lattice is
``|v|^4 / (v . c)`` (``v`` the lattice point before projection, ``c`` the
centroid of a cell holding it), corrected by ``5/6`` on vertices and ``35/36`` on
edges (Dragonfly's ``quat_setup``/``refine_edge``). Every point of a flat cell
has the same ``v . c / |c|``, so the weight is ``f / |v|^4`` up to a constant.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

__all__ = ["grid_size", "quaternion_grid"]

_TAU = (1 + math.sqrt(5.0)) / 2


def grid_size(level: int) -> int:
    """Number of rotations ``10 (5 n^3 + n)`` at refinement level ``n``."""
    n = _check_level(level)
    return 10 * (5 * n**3 + n)


def _check_level(level) -> int:
    if isinstance(level, bool) or int(level) != level:
        raise ValueError(f"level: expected an integer refinement level >= 1, got {level!r}")
    if int(level) < 1:
        raise ValueError(
            f"level: the orientation grid needs a refinement level >= 1 (Dragonfly's num_div), "
            f"got {level}"
        )
    return int(level)


def _even_permutations() -> list[tuple[int, ...]]:
    out = []
    for p in itertools.permutations(range(4)):
        inversions = sum(p[i] > p[j] for i in range(4) for j in range(i + 1, 4))
        if inversions % 2 == 0:
            out.append(p)
    return out


def _vertices() -> np.ndarray:
    """The 120 unit quaternions of the 600-cell (the binary icosahedral group)."""
    verts = [np.array(s, dtype=np.float64) / 2 for s in itertools.product((-1, 1), repeat=4)]
    for i in range(4):
        for s in (-1.0, 1.0):
            v = np.zeros(4)
            v[i] = s
            verts.append(v)
    base = [_TAU / 2, 0.5, 1 / (2 * _TAU), 0.0]
    for signs in itertools.product((-1, 1), repeat=3):
        v0 = np.array([signs[0] * base[0], signs[1] * base[1], signs[2] * base[2], 0.0])
        for p in _even_permutations():
            verts.append(v0[list(p)])
    out = np.stack(verts)
    assert out.shape == (120, 4)
    return out


def _simplices(verts: np.ndarray):
    """Edges, faces and cells of the 600-cell as index arrays (sorted tuples)."""
    d2 = ((verts[:, None] - verts[None]) ** 2).sum(-1)
    edge_d2 = 1 / _TAU**2
    adj = np.abs(d2 - edge_d2) < 1e-6
    edges = [(i, j) for i in range(120) for j in range(i + 1, 120) if adj[i, j]]
    faces = [(i, j, k) for i, j in edges for k in range(j + 1, 120) if adj[i, k] and adj[j, k]]
    cells = [
        (i, j, k, m)
        for i, j, k in faces
        for m in range(k + 1, 120)
        if adj[i, m] and adj[j, m] and adj[k, m]
    ]
    assert (len(edges), len(faces), len(cells)) == (720, 1200, 600)
    return np.array(edges), np.array(faces), np.array(cells)


def _interior_coefficients(n: int, k: int) -> np.ndarray:
    """Integer barycentric coefficients ``(M, k)``, all >= 1, summing to ``n``."""
    rows = [c for c in itertools.product(range(1, n + 1), repeat=k - 1) if sum(c) < n]
    if not rows:
        return np.zeros((0, k), dtype=np.float64)
    c = np.array(rows, dtype=np.float64).reshape(-1, k - 1)
    return np.concatenate([c, n - c.sum(1, keepdims=True)], axis=1)


def _canonical_half(q: np.ndarray) -> np.ndarray:
    """Bool: first nonzero coordinate positive (one of each antipodal pair)."""
    nz = np.abs(q) > 1e-9
    first = nz.argmax(axis=1)
    return q[np.arange(q.shape[0]), first] > 0


def quaternion_grid(level: int, dtype=torch.float32, device=None):
    """Dragonfly's quaternion grid at refinement level ``level`` (``num_div``).

    Parameters
    ----------
    level : int
        Refinement level ``n >= 1``.
    dtype : torch.dtype
        Output dtype.
    device : torch.device, optional
        Output device.

    Returns
    -------
    quaternions : torch.Tensor
        ``(M, 4)`` unit quaternions ``(w, x, y, z)``, one of each ``+-q`` pair,
        ``M = 10 (5 n^3 + n)``.
    weights : torch.Tensor
        ``(M,)`` quadrature weights (the inverse local density), summing to 1.

    Raises
    ------
    ValueError
        ``level`` is not an integer >= 1.
    """
    n = _check_level(level)
    verts = _vertices()
    edges, faces, cells = _simplices(verts)
    pts, factors = [verts], [np.full(120, 5 / 6)]
    for simplex, factor in ((edges, 35 / 36), (faces, 1.0), (cells, 1.0)):
        coef = _interior_coefficients(n, simplex.shape[1]) / n  # (K, k)
        if coef.shape[0] == 0:
            continue
        p = np.einsum("mk,skd->smd", coef, verts[simplex]).reshape(-1, 4)
        pts.append(p)
        factors.append(np.full(p.shape[0], factor))
    v = np.concatenate(pts)
    f = np.concatenate(factors)
    norm = np.linalg.norm(v, axis=1)
    # v . c / |c| is the same for every v (the distance of a cell's hyperplane from 0)
    w = f / norm**4
    q = v / norm[:, None]
    keep = _canonical_half(q)
    q, w = q[keep], w[keep]
    if q.shape[0] != grid_size(n):
        raise RuntimeError(f"600-cell refinement gave {q.shape[0]} points, not {grid_size(n)}")
    w = w / w.sum()
    return (
        torch.as_tensor(q, dtype=dtype, device=device),
        torch.as_tensor(w, dtype=dtype, device=device),
    )
