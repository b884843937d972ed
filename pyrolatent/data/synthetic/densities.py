"""Uniform particle densities on a cubic voxel grid, with ground truth for SPI simulation.

Shapes: a cube, a sphere, a constant-volume superellipsoid that morphs between
them (``morph_to_exponent``), a rounded cube, a dimer and a rod. Grids are
``(size, size, size)`` indexed ``[z, y, x]``; lengths are voxels. The
diffraction patterns of these densities are simulated by
:mod:`pyrolatent.data.synthetic.spi`.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "SHAPE_KINDS",
    "blob_density",
    "morph_to_exponent",
    "shape_density",
    "superellipsoid_half_width",
]

SHAPE_KINDS = ("cube", "sphere", "superellipsoid", "rounded_cube", "dimer", "rod")


def superellipsoid_half_width(p: float, volume: float) -> float:
    """Half-width ``a`` of ``|x/a|^p + |y/a|^p + |z/a|^p <= 1`` enclosing ``volume``.

    Uses ``V = 8 a^3 Gamma(1 + 1/p)^3 / Gamma(1 + 3/p)``.
    """
    if p <= 0:
        raise ValueError(f"p: the superellipsoid exponent must be positive, got {p}")
    log_unit = 3 * math.lgamma(1 + 1 / p) - math.lgamma(1 + 3 / p) + math.log(8.0)
    return math.exp((math.log(volume) - log_unit) / 3)


def morph_to_exponent(morph, p_cube: float = 32.0):
    """Superellipsoid exponent for morph ``m`` in [0, 1]: ``1/p = 1/p_cube + m (1/2 - 1/p_cube)``.

    ``m = 0`` gives ``p_cube`` (a cube), ``m = 1`` gives 2 (a sphere). Adjacent
    levels of an even ``m`` grid differ by similar amounts in their intensities
    (a grid even in ``log p`` would crowd near-identical cubes at one end).
    """
    m = torch.as_tensor(morph, dtype=torch.float64)
    return 1.0 / (1.0 / p_cube + m * (0.5 - 1.0 / p_cube))


def _rounded_cube_inner_edge(edge: float, rounding: float) -> tuple[float, float]:
    """Inner edge ``L`` and radius ``r = rounding * outer half-width`` at volume ``edge^3``."""

    def vol(inner, r):
        return inner**3 + 6 * inner**2 * r + 3 * math.pi * inner * r**2 + 4 / 3 * math.pi * r**3

    lo, hi = 0.0, edge
    for _ in range(60):  # bisect on the outer half-width h: inner = 2 h (1 - rounding)
        h = (lo + hi) / 2
        if vol(2 * h * (1 - rounding), rounding * h) < edge**3:
            lo = h
        else:
            hi = h
    h = (lo + hi) / 2
    return 2 * h * (1 - rounding), rounding * h


def shape_density(
    kind: str,
    size: int,
    p: float | None = None,
    edge: float | None = None,
    supersample: int = 3,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """A uniform particle on a ``(size, size, size)`` grid indexed ``[z, y, x]``.

    Every kind encloses the same volume, ``edge**3`` voxels, and is centred on
    the central voxel. Voxels hold the fraction of their volume inside the
    particle, estimated on a ``supersample``-times finer grid with a linear
    ramp across the surface (from its signed distance), so edges are
    anti-aliased and the volume is accurate to a fraction of a percent.

    Parameters
    ----------
    kind : str
        ``"cube"`` (edge ``edge``, faces normal to x, y, z); ``"sphere"``;
        ``"superellipsoid"`` (``|x|^p + |y|^p + |z|^p <= a^p``; large ``p`` is a
        cube, ``p = 2`` a sphere); ``"rounded_cube"`` (a cube whose edges are
        rounded with radius ``p`` times its half-width, ``p`` in [0, 1]);
        ``"dimer"`` (two touching spheres along x); ``"rod"`` (a cylinder along z,
        twice as long as wide).
    size : int
        Grid size in voxels.
    p : float, optional
        Exponent (``superellipsoid``, required) or rounding fraction
        (``rounded_cube``, default 0.3).
    edge : float, optional
        Edge of the cube of equal volume, in voxels; default ``size / 3`` (so
        the intensity is oversampled about three times per dimension).
    supersample : int
        Sub-samples per voxel and axis.

    Returns
    -------
    torch.Tensor
        ``(size, size, size)`` density in ``[0, 1]``.

    Raises
    ------
    ValueError
        Unknown kind, missing ``p``, or a particle larger than the grid.
    """
    if kind not in SHAPE_KINDS:
        raise ValueError(f"kind: unknown shape {kind!r}; expected one of {SHAPE_KINDS}")
    size = int(size)
    if size < 3:
        raise ValueError(f"size: expected at least 3 voxels, got {size}")
    edge = size / 3 if edge is None else float(edge)
    if not 0 < edge < size:
        raise ValueError(f"edge: expected 0 < edge < size={size}, got {edge}")
    vol = edge**3
    ss = int(supersample)
    n = size * ss
    c = (torch.arange(n, dtype=torch.float64) - (n - 1) / 2) / ss
    z, y, x = c.reshape(-1, 1, 1), c.reshape(1, -1, 1), c.reshape(1, 1, -1)
    # signed distance (voxels, negative inside; exact or a close approximation near the
    # surface), turned into a linear ramp one sub-sample wide: anti-aliased partial volumes
    if kind == "cube":
        dist = torch.maximum(torch.maximum(x.abs(), y.abs()), z.abs()) - edge / 2
    elif kind == "sphere":
        r = (3 * vol / (4 * math.pi)) ** (1 / 3)
        dist = (x**2 + y**2 + z**2).sqrt() - r
    elif kind == "superellipsoid":
        if p is None:
            raise ValueError("p: the superellipsoid needs an exponent p (2 = sphere, large = cube)")
        p = float(p)
        a = superellipsoid_half_width(p, vol)
        if a > (size - 1) / 2:
            raise ValueError(f"p={p}: the particle (half-width {a:.1f}) does not fit the grid")
        # the p-norm minus a: its gradient has unit length on the faces
        m = torch.maximum(torch.maximum(x.abs(), y.abs()), z.abs()).clamp_min(1e-12)
        pnorm = m * ((x.abs() / m) ** p + (y.abs() / m) ** p + (z.abs() / m) ** p) ** (1 / p)
        dist = pnorm - a
    elif kind == "rounded_cube":
        rounding = 0.3 if p is None else float(p)
        if not 0 <= rounding <= 1:
            raise ValueError(f"p: the rounding fraction must be in [0, 1], got {rounding}")
        inner, r = _rounded_cube_inner_edge(edge, rounding)
        dx = (x.abs() - inner / 2).clamp_min(0)
        dy = (y.abs() - inner / 2).clamp_min(0)
        dz = (z.abs() - inner / 2).clamp_min(0)
        outside = (dx**2 + dy**2 + dz**2).sqrt()
        inner_d = torch.maximum(torch.maximum(x.abs(), y.abs()), z.abs()) - inner / 2
        dist = torch.where(outside > 0, outside, inner_d.clamp_max(0)) - r
    elif kind == "dimer":
        r = (3 * vol / 2 / (4 * math.pi)) ** (1 / 3)
        d1 = ((x - r) ** 2 + y**2 + z**2).sqrt() - r
        d2 = ((x + r) ** 2 + y**2 + z**2).sqrt() - r
        dist = torch.minimum(d1, d2)
    else:  # rod: length 4 r, volume pi r^2 4 r
        r = (vol / (4 * math.pi)) ** (1 / 3)
        dist = torch.maximum((x**2 + y**2).sqrt() - r, z.abs() - 2 * r)
    inside = (0.5 - dist * ss).clamp(0.0, 1.0)
    dens = inside.to(torch.float32).reshape(size, ss, size, ss, size, ss).mean(dim=(1, 3, 5))
    if float(dens[0].sum() + dens[-1].sum() + dens[:, 0].sum() + dens[:, -1].sum()) > 0:
        raise ValueError(f"edge={edge}: the {kind} touches the border of a {size}^3 grid")
    return dens.to(dtype)


def blob_density(size: int, n_blobs: int = 12, seed: int = 0) -> torch.Tensor:
    """An asymmetric density: Gaussian blobs at random places (no point symmetry).

    Used where a particle must have no symmetry at all, e.g. to check recovered
    common-line angles against the truth.

    Parameters
    ----------
    size : int
        Grid size ``S`` in voxels; the grid is ``(S, S, S)`` indexed ``[z, y, x]``.
    n_blobs : int
        Number of Gaussian blobs (centres uniform within ``S / 6`` of the centre,
        widths 1 to 2.5 voxels, amplitudes 0.5 to 1.5).
    seed : int
        Seed of a private ``torch.Generator``.

    Returns
    -------
    torch.Tensor
        ``(S, S, S)`` float32, non-negative.
    """
    g = torch.Generator().manual_seed(seed)
    c = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    z, y, x = torch.meshgrid(c, c, c, indexing="ij")
    vol = torch.zeros(size, size, size)
    for _ in range(n_blobs):
        centre = (torch.rand(3, generator=g) - 0.5) * size / 3
        width = 1.0 + 1.5 * torch.rand(1, generator=g)
        amp = 0.5 + torch.rand(1, generator=g)
        r2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2
        vol += amp * torch.exp(-r2 / (2 * width**2))
    return vol
