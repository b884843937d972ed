"""Figures of latent time dynamics (Figs. 4-6 of the HS-AFM self-assembly paper).

Every function returns a ``matplotlib.figure.Figure`` and never calls
``plt.show()``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import gaussian_kde

from ..analysis.kde import wrapped_kde
from ._density import joint_kde_contours

__all__ = [
    "plot_kde_over_time",
    "plot_nmf_components",
    "plot_frames_by_latent",
    "plot_trajectory_latents",
    "plot_joint_latents",
]


def plot_kde_over_time(
    matrices: dict,
    grids: dict,
    transition: int | None = None,
    cmap: str = "viridis",
) -> Figure:
    """Heat maps ``KDE(L, t)`` of several latents (Fig. 5a-c).

    Parameters
    ----------
    matrices : dict
        Latent name -> ``(T, G)`` matrix from
        :func:`pyrolatent.analysis.kde.latent_kde_over_time`.
    grids : dict
        Latent name -> ``(G,)`` grid (radians for angles, shown in degrees).
    transition : int, optional
        Frame marked by a dashed line.

    Angle densities (per radian) are shown per degree on a degree axis; every
    colour bar is labelled with its density unit.
    """
    if not matrices:
        raise ValueError("matrices: need at least one latent")
    fig = Figure(figsize=(4 * len(matrices), 3.6), layout="constrained")
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    for ax, (name, m) in zip(axes, matrices.items(), strict=True):
        g = np.asarray(grids[name])
        deg = name.startswith("angle")
        y = np.rad2deg(g) if deg else g
        m = np.asarray(m) * (np.pi / 180 if deg else 1.0)  # per degree on a degree axis
        im = ax.imshow(
            m.T,
            aspect="auto",
            origin="lower",
            cmap=cmap,
            extent=(-0.5, m.shape[0] - 0.5, y[0], y[-1]),
        )
        if transition is not None:
            ax.axvline(transition, color="w", ls="--", lw=1)
        ax.set_xlabel("frame")
        ax.set_ylabel(f"{name} (deg)" if deg else name)
        ax.set_title(f"KDE({name}, t)")
        unit = "1/deg" if deg else f"1/unit of {name}"
        fig.colorbar(im, ax=ax, shrink=0.8, label=f"density ({unit})")
    return fig


def plot_nmf_components(
    weights,
    loadings,
    grid,
    weights_band=None,
    loadings_band=None,
    transition: int | None = None,
    planted: int | None = None,
    latent_name: str = "angle",
) -> Figure:
    """NMF components ``w_i(L)`` and time behaviours ``e_i(t)`` with bands (Fig. 5d-g).

    Parameters
    ----------
    weights : array_like
        ``(K, G)``.
    loadings : array_like
        ``(T, K)``.
    grid : array_like
        ``(G,)`` latent grid (radians shown in degrees for angles).
    weights_band, loadings_band : array_like, optional
        ``(2, K, G)`` / ``(2, T, K)`` lower and upper band.
    transition, planted : int, optional
        Detected and planted transition frames (vertical lines).
    """
    w, h = np.asarray(weights), np.asarray(loadings)
    if w.ndim != 2 or h.ndim != 2 or w.shape[0] != h.shape[1]:
        raise ValueError(f"weights (K, G) and loadings (T, K) mismatch: {w.shape}, {h.shape}")
    g = np.asarray(grid)
    x = np.rad2deg(g) if latent_name.startswith("angle") else g
    k = w.shape[0]
    fig = Figure(figsize=(9, 2.6 * k), layout="constrained")
    axes = fig.subplots(k, 2, squeeze=False)
    t = np.arange(h.shape[0])
    for i in range(k):
        ax = axes[i, 0]
        ax.plot(x, w[i], color=f"C{i}")
        if weights_band is not None:
            ax.fill_between(x, weights_band[0][i], weights_band[1][i], color=f"C{i}", alpha=0.3)
        ax.set_xlabel(f"{latent_name} (deg)" if latent_name.startswith("angle") else latent_name)
        ax.set_ylabel(f"w{i + 1}")
        ax = axes[i, 1]
        ax.plot(t, h[:, i], color=f"C{i}")
        if loadings_band is not None:
            ax.fill_between(
                t, loadings_band[0][:, i], loadings_band[1][:, i], color=f"C{i}", alpha=0.3
            )
        if transition is not None:
            ax.axvline(transition, color="k", ls="--", lw=1, label="detected")
        if planted is not None:
            ax.axvline(planted, color="r", ls=":", lw=1, label="planted")
        ax.set_xlabel("frame")
        ax.set_ylabel(f"e{i + 1}(t)")
        if i == 0 and (transition is not None or planted is not None):
            ax.legend(fontsize=7)
    return fig


def plot_frames_by_latent(
    frames,
    particles: dict,
    values,
    frame_numbers,
    label: str = "angle",
    cmap: str = "hsv",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """Frames with every particle marked and coloured by a latent (Fig. 6a-c).

    Parameters
    ----------
    frames : array_like
        ``(T, H, W)`` movie.
    particles : dict
        Table with ``frame``, ``row``, ``col``.
    values : array_like
        ``(P,)`` latent per particle (NaN: not shown).
    frame_numbers : sequence of int
        Frames to show (frames without particles are shown empty).
    """
    mov = np.asarray(frames)
    v = np.asarray(values, dtype=np.float64)
    f = np.asarray(particles["frame"])
    if v.shape != f.shape:
        raise ValueError(f"values: expected shape {f.shape}, got {v.shape}")
    frame_numbers = list(frame_numbers)
    if not frame_numbers:
        raise ValueError("frame_numbers: need at least one frame")
    finite = v[np.isfinite(v)]
    vmin = float(finite.min()) if vmin is None and finite.size else (vmin or 0.0)
    vmax = float(finite.max()) if vmax is None and finite.size else (vmax or 1.0)
    fig = Figure(figsize=(3.6 * len(frame_numbers) + 0.8, 3.6), layout="constrained")
    axes = fig.subplots(1, len(frame_numbers), squeeze=False)[0]
    sc = None
    for ax, t in zip(axes, frame_numbers, strict=True):
        ax.imshow(mov[t], cmap="gray")
        sel = (f == t) & np.isfinite(v)
        sc = ax.scatter(
            particles["col"][sel],
            particles["row"][sel],
            c=v[sel],
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            s=18,
            edgecolors="k",
            linewidths=0.3,
        )
        ax.set_title(f"frame {t}")
        ax.set_axis_off()
    if sc is not None:
        fig.colorbar(sc, ax=list(axes), shrink=0.8, label=label)
    return fig


def plot_trajectory_latents(traces: dict, tracks, latent_names=("angle",)) -> Figure:
    """Latents along selected trajectories (Fig. 6d-e).

    Parameters
    ----------
    traces : dict
        Output of :func:`pyrolatent.analysis.trajectories.latents_along_trajectories`.
    tracks : sequence of int
        Track ids to draw.
    latent_names : sequence of str
        Columns of ``traces`` (angles in radians are shown in degrees).
    """
    latent_names = list(latent_names)
    fig = Figure(figsize=(7, 2.4 * len(latent_names)), layout="constrained")
    axes = fig.subplots(len(latent_names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, latent_names, strict=True):
        for i, tr in enumerate(tracks):
            sel = traces["track"] == tr
            y = np.asarray(traces[name])[sel]
            if name.startswith("angle"):
                y = np.rad2deg(np.unwrap(y))
            ax.plot(traces["frame"][sel], y, ".-", color=f"C{i % 10}", label=f"track {tr}")
        ax.set_xlabel("frame")
        ax.set_ylabel(f"{name} (deg)" if name.startswith("angle") else name)
    if len(tracks):
        axes[0].legend(fontsize=7, ncol=2)
    return fig


def _with_unit(name: str) -> str:
    """Axis label of a latent: angles in degrees, offsets in pixels, content z unitless."""
    if name.startswith("angle"):
        return f"{name} (deg)"
    if name.startswith("offset"):
        return f"{name} (pixels)"
    return name


def _diagonal(ax, x: np.ndarray, circular: bool) -> None:
    """Histogram and 1-D KDE; angles (deg) on the circle, so +-180 deg peaks stay one peak."""
    if circular:
        ax.hist(x, bins=72, range=(-180, 180), density=True, color="0.7")
        if x.size:
            g = np.linspace(-180, 180, 361)
            ax.plot(g, wrapped_kde(np.deg2rad(x), np.deg2rad(g), 0.1) * np.pi / 180, color="C0")
        ax.set_xlim(-180, 180)
        ax.set_ylabel("density (1/deg)")
        return
    ax.hist(x, bins=60, density=True, color="0.7")
    if x.size > 2 and np.ptp(x) > 0:
        g = np.linspace(x.min(), x.max(), 200)
        ax.plot(g, gaussian_kde(x)(g), color="C0")


def plot_joint_latents(latents: dict, names=None, max_points: int = 4000, seed: int = 0) -> Figure:
    """Pairwise joint distributions of latents with KDE contours, 1-D KDEs on the diagonal (Fig. 4).

    Latents named ``angle*`` (radians) are shown in degrees on ``[-180, 180]``
    with circular KDEs (wrapped kernels), so a peak at +-180 deg is one peak.

    Parameters
    ----------
    latents : dict
        Name -> ``(N,)`` values (angles in radians are shown in degrees).
    names : sequence of str, optional
        Which latents (default all).
    max_points : int
        Points drawn per scatter (a random subset).
    """
    names = list(names or latents)
    if len(names) < 2:
        raise ValueError("need at least two latents")
    data = {}
    for n in names:
        v = np.asarray(latents[n], dtype=np.float64)
        data[n] = np.rad2deg(v) if n.startswith("angle") else v
    n_pts = len(data[names[0]])
    rng = np.random.default_rng(seed)
    sub = rng.choice(n_pts, min(n_pts, max_points), replace=False) if n_pts else np.zeros(0, int)
    k = len(names)
    fig = Figure(figsize=(2.6 * k, 2.6 * k), layout="constrained")
    axes = fig.subplots(k, k, squeeze=False)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            ax = axes[i, j]
            x, y = data[b], data[a]
            if i == j:
                _diagonal(ax, x, circular=b.startswith("angle"))
            elif i > j:
                ax.scatter(x[sub], y[sub], s=2, alpha=0.3, color="C0")
                joint_kde_contours(
                    ax,
                    x[sub],
                    y[sub],
                    x_period=360.0 if b.startswith("angle") else None,
                    y_period=360.0 if a.startswith("angle") else None,
                )
            else:
                ax.set_axis_off()
            if i == k - 1:
                ax.set_xlabel(_with_unit(b))
            if j == 0 and i > 0:
                ax.set_ylabel(_with_unit(a))
    return fig
