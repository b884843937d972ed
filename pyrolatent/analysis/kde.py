"""Kernel density estimates of latent variables per frame: ``KDE(L, t)``.

Linear latents (content ``z``, offsets) use a Gaussian kernel. Angles are
circular: a *wrapped* Gaussian kernel (the sum of the kernel over the images
``x + k * period``) gives a density that is periodic and integrates to 1 over
one period, so peaks near ``-pi`` and ``pi`` are one peak.
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import as_array, check_count, check_number, check_weights

__all__ = ["gaussian_kde_1d", "wrapped_kde", "latent_kde_over_time"]


def _as_1d(x, name: str, allow_empty: bool = True) -> np.ndarray:
    return as_array(x, name, ndim=(1,), allow_empty=allow_empty)


def gaussian_kde_1d(values, grid, bandwidth: float, weights=None) -> np.ndarray:
    """Gaussian KDE of ``values (N,)`` on ``grid (G,)``; zeros when ``N = 0``.

    The density integrates to 1 over the real line (not over the grid).

    Parameters
    ----------
    values : array_like
        ``(N,)`` finite real values.
    grid : array_like
        ``(G,)`` finite evaluation points.
    bandwidth : float
        Kernel standard deviation, finite and > 0.
    weights : array_like, optional
        ``(N,)`` finite, non-negative, not all zero (normalised to sum 1).

    Raises
    ------
    ValueError
        Shapes, NaN/Inf, a bandwidth that is not finite and positive, bad weights.
    TypeError
        Complex or non-numeric data.
    """
    x, g = _as_1d(values, "values"), _as_1d(grid, "grid")
    bandwidth = check_number(bandwidth, "bandwidth", low=0, low_open=True)
    w = None if weights is None else check_weights(weights, x.size)
    if x.size == 0:
        return np.zeros_like(g)
    w = np.full(x.size, 1.0 / x.size) if w is None else w
    u = (g[:, None] - x[None]) / bandwidth
    return (np.exp(-0.5 * u**2) * w).sum(1) / (bandwidth * math.sqrt(2 * math.pi))


def wrapped_kde(
    angles, grid, bandwidth: float = 0.1, period: float = 2 * math.pi, n_wraps: int = 3
) -> np.ndarray:
    """Wrapped-Gaussian KDE of circular data on ``grid``.

    Parameters
    ----------
    angles : array_like
        ``(N,)`` radians (any range; taken modulo ``period``).
    grid : array_like
        ``(G,)`` evaluation points, radians.
    bandwidth : float
        Kernel standard deviation, radians (must be < ``period / 2``).
    period : float
        ``2 pi`` for directed angles, ``pi`` for axes, ``2 pi / n`` for an n-fold
        symmetry.
    n_wraps : int
        Images ``k = -n_wraps..n_wraps`` summed (3 is exact to double precision
        for ``bandwidth < period / 4``).

    Returns
    -------
    numpy.ndarray
        ``(G,)`` density per radian, integrating to 1 over one period (zeros
        when there are no angles).
    """
    a, g = _as_1d(angles, "angles"), _as_1d(grid, "grid")
    period = check_number(period, "period", low=0, low_open=True)
    bandwidth = check_number(bandwidth, "bandwidth", low=0, high=period / 2, low_open=True,
                             high_open=True)  # fmt: skip
    n_wraps = check_count(n_wraps, "n_wraps", low=0, high=100)
    if a.size == 0:
        return np.zeros_like(g)
    d = np.remainder(g[:, None] - a[None] + period / 2, period) - period / 2  # (G, N)
    k = np.arange(-n_wraps, n_wraps + 1) * period
    u = (d[..., None] + k) / bandwidth
    dens = np.exp(-0.5 * u**2).sum(-1).mean(1)
    return dens / (bandwidth * math.sqrt(2 * math.pi))


def latent_kde_over_time(
    latents,
    frames,
    grid,
    *,
    circular: bool = False,
    bandwidth: float | None = None,
    period: float = 2 * math.pi,
    window: int = 1,
    n_frames: int | None = None,
) -> np.ndarray:
    """Per-frame 1-D KDEs of a latent: the matrix ``KDE(L, t)``.

    Parameters
    ----------
    latents : array_like
        ``(N,)`` values of one latent variable, one per particle (radians for
        an angle).
    frames : array_like
        ``(N,)`` integer frame of each value.
    grid : array_like
        ``(G,)`` latent values where densities are evaluated.
    circular : bool
        Wrapped KDE with ``period`` (for angles).
    bandwidth : float, optional
        Kernel width. Default: 0.1 rad for circular data; Scott's rule on all
        values (``1.06 sigma N^{-1/5}``) otherwise.
    period : float
        Period of circular data, radians.
    window : int
        Frames pooled per row: row ``t`` uses the particles of frames
        ``t - window // 2 .. t + (window - 1) // 2`` (a centred sliding window;
        1 = one frame).
    n_frames : int, optional
        Number of rows ``T``; default ``max(frames) + 1``. Frames without
        particles give rows of zeros (carried through, not dropped).

    Returns
    -------
    numpy.ndarray
        ``(T, G)`` non-negative densities, time on rows.

    Raises
    ------
    ValueError
        Mismatched lengths, negative frames, NaN values, a window < 1, or a
        movie with fewer frames than the window.
    """
    x = _as_1d(latents, "latents")
    f = as_array(frames, "frames", ndim=(1,), allow_empty=True, allow_bool=False)
    if f.shape != x.shape:
        raise ValueError(f"frames: expected shape {x.shape}, got {f.shape}")
    if f.size and not np.all(f == np.round(f)):
        raise ValueError("frames: must be integers")
    f = f.astype(np.int64)
    if f.size and f.min() < 0:
        raise ValueError("frames: must be >= 0")
    g = _as_1d(grid, "grid")
    if g.size < 2:
        raise ValueError("grid: need at least 2 points")
    window = check_count(window, "window", low=1)
    if n_frames is not None:
        n_frames = check_count(n_frames, "n_frames", low=0)
    if bandwidth is not None:
        bandwidth = check_number(bandwidth, "bandwidth", low=0, low_open=True)
    if n_frames is None:
        n_frames = int(f.max()) + 1 if f.size else 0
    if f.size and f.max() >= n_frames:
        raise ValueError(f"frames: values must be < n_frames = {n_frames}")
    if n_frames < window:
        raise ValueError(
            f"the movie has {n_frames} frames, fewer than the KDE window of {window} frames"
        )
    if bandwidth is None:
        if circular:
            bandwidth = 0.1
        else:
            sd = float(np.std(x)) if x.size > 1 else 1.0
            bandwidth = 1.06 * (sd if sd > 0 else 1.0) * max(x.size, 1) ** -0.2
    out = np.zeros((n_frames, g.size))
    lo, hi = window // 2, (window - 1) // 2
    order = np.argsort(f, kind="stable")
    fs, xs = f[order], x[order]
    for t in range(n_frames):
        a, b = np.searchsorted(fs, [t - lo, t + hi + 1])
        vals = xs[a:b]
        if circular:
            out[t] = wrapped_kde(vals, g, bandwidth, period)
        else:
            out[t] = gaussian_kde_1d(vals, g, bandwidth)
    return out
