"""Latent figures are built, return Figures and draw what they are given."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from pyrolatent.plot import plot_history, plot_latent_distributions, plot_manifold


def _encoding(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "angle": {"loc": rng.uniform(-np.pi, np.pi, n), "scale": np.full(n, 0.1)},
        "offset": {"loc": rng.normal(size=(n, 2)), "scale": np.ones((n, 2))},
        "z": {"loc": rng.normal(size=(n, 2)), "scale": np.ones((n, 2))},
    }


def test_latent_distribution_figure_has_all_panels(tmp_path):
    fig = plot_latent_distributions(_encoding())
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4
    assert fig.axes[0].name == "polar"
    # the polar histogram holds every angle
    assert sum(p.get_height() for p in fig.axes[0].patches) == 300
    fig.savefig(tmp_path / "lat.png")
    assert (tmp_path / "lat.png").stat().st_size > 1000


def test_manifold_mosaic_shape_and_errors():
    grid = np.arange(3 * 3 * 4 * 5, dtype=float).reshape(3, 3, 4, 5)
    fig = plot_manifold(grid)
    assert fig.axes[0].images[0].get_array().shape == (12, 15)
    with pytest.raises(ValueError, match="G, G, H, W"):
        plot_manifold(np.zeros((3, 4, 5)))


def test_history_plot():
    history = {"epoch": [0, 1, 2], "loss": [3, 2, 1], "val_loss": [3, 2.5, 2], "beta": [0, 0.5, 1]}
    fig = plot_history(history)
    assert len(fig.axes) == 2
    with pytest.raises(ValueError):
        plot_history({})
