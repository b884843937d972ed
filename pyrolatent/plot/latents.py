"""Figures of latent spaces: manifolds, latent distributions, training curves.

Every function returns a ``matplotlib.figure.Figure`` and never calls
``plt.show()``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import gaussian_kde

from ._density import joint_kde_contours

__all__ = ["plot_manifold", "plot_latent_distributions", "plot_history"]


def plot_manifold(
    grid: np.ndarray,
    z_range: tuple[float, float] = (-2.0, 2.0),
    cmap: str = "gray",
    title: str | None = "latent manifold",
) -> Figure:
    """Show decoded images of a latent grid as one mosaic.

    Parameters
    ----------
    grid : numpy.ndarray
        ``(G, G, H, W)``, e.g. from :meth:`pyrolatent.models.rvae.RVAE.manifold`.
    z_range : (float, float)
        Latent range of the grid, for the axis labels.
    """
    grid = np.asarray(grid)
    if grid.ndim != 4:
        raise ValueError(f"grid: expected (G, G, H, W), got shape {grid.shape}")
    g0, g1, h, w = grid.shape
    mosaic = grid.transpose(0, 2, 1, 3).reshape(g0 * h, g1 * w)
    fig = Figure(figsize=(6, 6 * g0 * h / (g1 * w)))
    ax = fig.add_subplot()
    ax.imshow(mosaic, cmap=cmap, extent=(z_range[0], z_range[1], z_range[0], z_range[1]))
    ax.set_xlabel("z[1]" if g0 > 1 else "z[0]")
    ax.set_ylabel("z[0]")
    if title:
        ax.set_title(title)
    return fig


def _kde_contour(ax, x, y, levels: int = 6) -> None:
    if x.size < 5 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return
    kde = gaussian_kde(np.vstack([x, y]))
    gx, gy = np.meshgrid(np.linspace(x.min(), x.max(), 60), np.linspace(y.min(), y.max(), 60))
    dens = kde(np.vstack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    ax.contour(gx, gy, dens, levels=levels, linewidths=0.8, colors="k")


def plot_latent_distributions(
    encoding: dict, bins: int = 72, max_points: int = 5000, seed: int = 0
) -> Figure:
    """Angle histogram on the circle, offsets, content latents and their joints.

    Parameters
    ----------
    encoding : dict
        Output of ``RVAE.encode`` (``{"angle": {"loc": ...}, "offset": ..., "z": ...}``).
    bins : int
        Bins of the angle histogram.
    max_points : int
        Scatter plots subsample to this many points.
    """
    z = np.asarray(encoding["z"]["loc"])
    rng = np.random.default_rng(seed)
    sel = rng.permutation(len(z))[:max_points]
    panels = ["angle", "offset", "z"] + (["joint"] if "angle" in encoding else [])
    panels = [p for p in panels if p in encoding or p == "joint"]
    fig = Figure(figsize=(4 * len(panels), 4))
    for i, name in enumerate(panels):
        if name == "angle":
            ax = fig.add_subplot(1, len(panels), i + 1, projection="polar")
            a = np.asarray(encoding["angle"]["loc"])
            counts, edges = np.histogram(np.mod(a, 2 * np.pi), bins=bins, range=(0, 2 * np.pi))
            ax.bar(edges[:-1], counts, width=edges[1] - edges[0], align="edge")
            ax.set_title("angle (rad, CCW)")
        elif name == "offset":
            ax = fig.add_subplot(1, len(panels), i + 1)
            o = np.asarray(encoding["offset"]["loc"])
            ax.hist(o[:, 0], bins=50, alpha=0.6, label="dx")
            ax.hist(o[:, 1], bins=50, alpha=0.6, label="dy")
            ax.set_xlabel("offset (pixels)")
            ax.legend()
        elif name == "z":
            ax = fig.add_subplot(1, len(panels), i + 1)
            if z.shape[1] >= 2:
                ax.scatter(z[sel, 0], z[sel, 1], s=3, alpha=0.4)
                _kde_contour(ax, z[sel, 0], z[sel, 1])
                ax.set_xlabel("z[0]")
                ax.set_ylabel("z[1]")
            else:
                ax.hist(z[:, 0], bins=50)
                ax.set_xlabel("z[0]")
            ax.set_title("content latents")
        else:
            ax = fig.add_subplot(1, len(panels), i + 1)
            a = np.asarray(encoding["angle"]["loc"])[sel]
            a = np.remainder(a + np.pi, 2 * np.pi) - np.pi
            ax.scatter(a, z[sel, 0], s=3, alpha=0.4)
            joint_kde_contours(ax, a, z[sel, 0], x_period=2 * np.pi, linewidths=0.8)
            ax.set_xlabel("angle (rad)")
            ax.set_ylabel("z[0]")
            ax.set_title("joint angle / z[0]")
    fig.tight_layout()
    return fig


def plot_history(history: dict) -> Figure:
    """Training (and validation) loss per epoch, plus any other logged numbers."""
    if "loss" not in history or not history["loss"]:
        raise ValueError("history has no 'loss' entries")
    extra = [k for k in history if k not in ("epoch", "loss", "val_loss")]
    fig = Figure(figsize=(5 * (1 + bool(extra)), 3.5))
    ax = fig.add_subplot(1, 1 + bool(extra), 1)
    epochs = history.get("epoch", list(range(len(history["loss"]))))
    ax.plot(epochs, history["loss"], label="train")
    if "val_loss" in history:
        ax.plot(epochs, history["val_loss"], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per item")
    ax.legend()
    if extra:
        ax2 = fig.add_subplot(1, 2, 2)
        for k in extra:
            ax2.plot(epochs, history[k], label=k)
        ax2.set_xlabel("epoch")
        ax2.legend()
    fig.tight_layout()
    return fig
