"""Figures of the ss-rVAE stress tests: accuracy curves and grids, confusion
matrices and class-conditioned latent traversals.

Every function returns a ``matplotlib.figure.Figure`` and never calls
``plt.show()``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "plot_accuracy_curves",
    "plot_accuracy_grid",
    "plot_confusion_matrix",
    "plot_class_traversals",
]

_ANGLE_KNOBS = ("angle_range",)


def _axis_values(param: str, values) -> tuple[np.ndarray, str]:
    v = np.asarray(values, dtype=float)
    if param in _ANGLE_KNOBS:
        return np.degrees(v), f"{param} (deg)"
    return v, param


def plot_accuracy_curves(
    curves: dict[str, dict], chance: float | None = 0.25, title: str | None = None
) -> Figure:
    """Accuracy against one disorder knob for one or more models (Fig. 3a, 4e, 4f).

    Parameters
    ----------
    curves : dict
        ``{label: accuracy_curve(...) output}``; all must vary the same knob.
    chance : float, optional
        Draw the chance level (``1 / n_classes``).
    """
    if not curves:
        raise ValueError("curves is empty")
    params = {c["param"] for c in curves.values()}
    if len(params) != 1:
        raise ValueError(f"all curves must vary the same knob, got {sorted(params)}")
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    for label, c in curves.items():
        x, xlabel = _axis_values(c["param"], c["values"])
        ax.plot(x, c["accuracy"], "o-", label=label)
    if chance is not None:
        ax.axhline(chance, color="gray", ls=":", label="chance")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_accuracy_grid(grid: dict, title: str | None = "accuracy") -> Figure:
    """Heat map of an :func:`~pyrolatent.analysis.stress.accuracy_grid` (Fig. 4a)."""
    acc = np.asarray(grid["accuracy"], dtype=float)
    rows, rlabel = _axis_values(grid["row_param"], grid["row_values"])
    cols, clabel = _axis_values(grid["col_param"], grid["col_values"])
    fig = Figure(figsize=(1.0 + 0.7 * len(cols), 1.0 + 0.5 * len(rows)))
    ax = fig.add_subplot()
    im = ax.imshow(acc, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
    ax.set_xticks(range(len(cols)), [f"{c:.3g}" for c in cols])
    ax.set_yticks(range(len(rows)), [f"{r:.3g}" for r in rows])
    for i, j in np.ndindex(acc.shape):
        ax.text(j, i, f"{acc[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w")
    ax.set_xlabel(clabel)
    ax.set_ylabel(rlabel)
    fig.colorbar(im, ax=ax, label="accuracy")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(
    matrix, class_names: Sequence[str] | None = None, normalize: bool = True
) -> Figure:
    """Confusion matrix, rows = true class, columns = predicted class.

    Parameters
    ----------
    matrix : array_like
        ``(K, K)`` counts.
    class_names : sequence of str, optional
    normalize : bool
        Show row fractions instead of counts.
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix: expected (K, K), got shape {m.shape}")
    k = m.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"class_names: expected {k} names, got {len(names)}")
    shown = m / np.maximum(m.sum(1, keepdims=True), 1) if normalize else m
    fig = Figure(figsize=(1.5 + 0.8 * k, 1.2 + 0.8 * k))
    ax = fig.add_subplot()
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    for i, j in np.ndindex(m.shape):
        txt = f"{shown[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
        ax.text(j, i, txt, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(k), names, rotation=45)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    return fig


def plot_class_traversals(
    traversals, class_names: Sequence[str] | None = None, cmap: str = "gray"
) -> Figure:
    """Class-conditioned latent traversals, one mosaic per class.

    Parameters
    ----------
    traversals : sequence of array_like
        One ``(G, G, H, W)`` grid per class, e.g. ``[m.manifold(k) for k in range(K)]``
        from :meth:`pyrolatent.models.ssrvae.SSRVAE.manifold`.
    class_names : sequence of str, optional
    """
    grids = [np.asarray(t) for t in traversals]
    if not grids or any(g.ndim != 4 for g in grids):
        raise ValueError("traversals: expected a non-empty list of (G, G, H, W) grids")
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(grids))]
    ncol = min(len(grids), 4)
    nrow = math.ceil(len(grids) / ncol)
    fig = Figure(figsize=(3.2 * ncol, 3.4 * nrow))
    for idx, (g, name) in enumerate(zip(grids, names, strict=True)):
        g0, g1, h, w = g.shape
        ax = fig.add_subplot(nrow, ncol, idx + 1)
        ax.imshow(g.transpose(0, 2, 1, 3).reshape(g0 * h, g1 * w), cmap=cmap)
        ax.set_title(name)
        ax.axis("off")
    fig.tight_layout()
    return fig
