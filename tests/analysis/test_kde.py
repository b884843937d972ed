"""Per-frame KDEs: wrapped kernels for angles, empty frames, window errors."""

from __future__ import annotations

import numpy as np
import pytest

from pyrolatent.analysis.kde import gaussian_kde_1d, latent_kde_over_time, wrapped_kde


def test_wrapped_kde_is_periodic_and_normalised():
    grid = np.linspace(-np.pi, np.pi, 720, endpoint=False)
    dens = wrapped_kde(np.array([np.pi - 0.01]), grid, bandwidth=0.2)
    # the mass near +pi continues at -pi
    assert abs(dens[0] - dens[-1]) < 0.05 * dens.max()
    assert abs(dens.sum() * (2 * np.pi / 720) - 1) < 1e-6
    # a linear KDE loses mass at the cut, the wrapped one does not
    lin = gaussian_kde_1d(np.array([np.pi - 0.01]), grid, 0.2)
    assert lin.sum() * (2 * np.pi / 720) < 0.6


def test_kde_over_time_shape_empty_frames_and_window():
    rng = np.random.default_rng(0)
    frames = np.repeat([0, 1, 3, 4], 20)  # frame 2 has no particles
    angles = rng.vonmises(0.0, 20.0, frames.size)
    grid = np.linspace(-np.pi, np.pi, 64, endpoint=False)
    k = latent_kde_over_time(angles, frames, grid, circular=True, n_frames=6)
    assert k.shape == (6, 64)
    assert np.all(k[2] == 0) and np.all(k[5] == 0)
    assert np.all(k >= 0)
    np.testing.assert_allclose(k[[0, 1, 3, 4]].sum(1) * (2 * np.pi / 64), 1, atol=1e-6)
    # a 3-frame window fills frame 2 from its neighbours
    k3 = latent_kde_over_time(angles, frames, grid, circular=True, n_frames=6, window=3)
    assert k3[2].sum() > 0
    # a linear latent
    kz = latent_kde_over_time(rng.normal(size=frames.size), frames, np.linspace(-3, 3, 50))
    assert kz.shape == (5, 50)


def test_kde_errors():
    grid = np.linspace(-1, 1, 10)
    with pytest.raises(ValueError, match="fewer than the KDE window"):
        latent_kde_over_time(np.zeros(4), np.arange(4), grid, window=5)
    with pytest.raises(ValueError, match="frames"):
        latent_kde_over_time(np.zeros(4), np.arange(3), grid)
    with pytest.raises(ValueError, match="NaN"):
        latent_kde_over_time(np.array([np.nan]), np.array([0]), grid)
    with pytest.raises(ValueError, match="bandwidth"):
        wrapped_kde(np.zeros(3), grid, bandwidth=4.0)
