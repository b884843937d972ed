"""KDE contours for figures, circular along an angle axis (shared by the plot modules)."""

from __future__ import annotations

import numpy as np

__all__ = ["joint_kde_contours"]


def _kernel(grid: np.ndarray, values: np.ndarray, period: float | None) -> np.ndarray:
    """Gaussian kernel ``(G, N)``: Scott's bandwidth on a linear axis; on a periodic axis
    ``period / 36`` (10 deg: orientation peaks are narrow and several, which Scott's rule
    would smear into one) and the nearest image."""
    d = grid[:, None] - values[None]
    if period is None:
        h = max(float(np.std(values)) * values.size ** (-1 / 6), 1e-9)
    else:
        h = period / 36
        d = np.remainder(d + period / 2, period) - period / 2
    return np.exp(-0.5 * (d / h) ** 2) / h


def joint_kde_contours(
    ax,
    x,
    y,
    *,
    x_period: float | None = None,
    y_period: float | None = None,
    levels: int = 6,
    **contour_kwargs,
) -> None:
    """Contours of a 2-D product-kernel KDE of ``(x, y)`` on ``ax``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    x, y : array_like
        ``(N,)`` values. Fewer than 6 points, or a constant axis, draw nothing.
    x_period, y_period : float, optional
        The period of a circular axis (360 for degrees, ``2 pi`` for radians):
        that axis spans ``[-period/2, period/2]`` and its kernel wraps around, so
        a cluster at +-180 deg is one cluster.
    levels : int
        Contour levels.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size <= 5 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return
    axes = []
    for v, period in ((x, x_period), (y, y_period)):
        if period is None:
            axes.append(np.linspace(v.min(), v.max(), 60))
        else:
            axes.append(np.linspace(-period / 2, period / 2, 73))
    gx, gy = axes
    zz = _kernel(gy, y, y_period) @ _kernel(gx, x, x_period).T  # (Gy, Gx)
    contour_kwargs = {"colors": "k", "linewidths": 0.5} | contour_kwargs
    ax.contour(gx, gy, zz, levels=levels, **contour_kwargs)
