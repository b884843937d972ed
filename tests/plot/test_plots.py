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


def test_kde_over_time_colour_bars_are_labelled_with_units():
    from pyrolatent.plot.dynamics import plot_kde_over_time

    grids = {"angle": np.linspace(-np.pi, np.pi, 36, endpoint=False), "z0": np.linspace(-2, 2, 20)}
    kdes = {"angle": np.full((10, 36), 1 / (2 * np.pi)), "z0": np.full((10, 20), 0.25)}
    fig = plot_kde_over_time(kdes, grids, transition=5)
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert [b.get_ylabel() for b in bars] == ["density (1/deg)", "density (1/unit of z0)"]
    # a uniform angle density (1 / 2pi per rad) is shown per degree: 1/360
    image = fig.axes[0].images[0]
    assert np.allclose(image.get_array(), 1 / 360)


def _peaks_on_circle(y: np.ndarray) -> int:
    """Local maxima of a periodic curve sampled on [-180, 180] (last point = first)."""
    c = y[:-1]
    return int(np.sum((c > np.roll(c, 1)) & (c >= np.roll(c, -1))))


def test_joint_latents_angle_kde_is_circular():
    from pyrolatent.plot.dynamics import plot_joint_latents

    rng = np.random.default_rng(0)
    # one orientation peak at 180 deg, split by the wrap into +179 and -179
    angle = np.angle(np.exp(1j * (np.pi + rng.normal(0, 0.15, 2000))))
    z = rng.normal(size=2000)
    fig = plot_joint_latents({"angle": angle, "z_0": z, "offset_0": z})
    diag = fig.axes[0]
    x, y = diag.lines[0].get_data()
    assert x[0] == -180 and x[-1] == 180
    assert _peaks_on_circle(y) == 1
    assert y[0] > 0.9 * y.max() and y[-1] > 0.9 * y.max()  # the peak sits on +-180 deg
    assert diag.get_ylabel() == "density (1/deg)"
    # the joint contours of angle vs z0 span the whole circle (not min..max of the data)
    joint = fig.axes[6]  # bottom row, first column: angle vs offset_0
    assert joint.get_xlabel() == "angle (deg)" and joint.get_ylabel() == "offset_0 (pixels)"
    assert len(joint.collections) >= 2  # scatter and contour set
