"""Classical detector: sub-pixel accuracy, polarity, the noise threshold, argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from pyrolatent.segmentation.detect import detect_particles, null_mass_threshold


def _blobs(n_frames=4, size=128, n=30, sigma=1.8, noise=0.05, seed=0):
    """Gaussian spots of height 1 on a grid with random sub-pixel offsets."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    frames, truth = [], []
    grid = np.stack(np.meshgrid(np.arange(12, size - 12, 17), np.arange(12, size - 12, 17)), -1)
    grid = grid.reshape(-1, 2)[:n].astype(float)
    for f in range(n_frames):
        pos = grid + rng.uniform(-0.5, 0.5, grid.shape)
        img = np.zeros((size, size))
        for r, c in pos:
            img += np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * sigma**2))
        frames.append(img + rng.normal(0, noise, img.shape))
        truth.append(np.c_[np.full(len(pos), f), pos])
    return np.stack(frames).astype(np.float32), np.concatenate(truth)


def _errors(found, truth):
    d, _ = cKDTree(truth[:, 1:] + 1000 * truth[:, :1]).query(
        np.c_[found["row"], found["col"]] + 1000 * found["frame"][:, None]
    )
    return d


def test_bright_spots_found_with_sub_pixel_accuracy():
    frames, truth = _blobs()
    found = detect_particles(frames, diameter=9, polarity="bright")
    assert len(found["row"]) == len(truth)
    err = _errors(found, truth)
    # centroids of noisy Gaussian spots: well under a tenth of a pixel
    assert np.sqrt((err**2).mean()) < 0.1, np.sqrt((err**2).mean())
    assert set(found) >= {"frame", "row", "col", "mass", "snr", "orientation"}
    assert found["touches_border"].dtype == bool and not found["touches_border"].any()


def test_polarity_dark_finds_inverted_spots_and_bright_does_not():
    frames, truth = _blobs(n_frames=2)
    inverted = 1.0 - frames
    dark = detect_particles(inverted, diameter=9, polarity="dark")
    assert len(dark["row"]) == len(truth)
    assert np.sqrt((_errors(dark, truth) ** 2).mean()) < 0.1
    wrong = detect_particles(inverted, diameter=9, polarity="bright")
    # the wrong polarity finds the gaps between spots, never the spots themselves
    assert (_errors(wrong, truth) > 3).all()


def test_pure_noise_gives_almost_no_detections():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, (6, 128, 128)).astype(np.float32)
    found = detect_particles(noise, diameter=9)
    # the noise threshold allows 0.5 false detections per frame on average
    assert len(found["row"]) <= 6, len(found["row"])
    assert null_mass_threshold(1.0, (128, 128), diameter=9, separation=10) > 0


def test_detect_checks_its_arguments():
    frames = np.zeros((1, 32, 32), np.float32)
    with pytest.raises(ValueError, match="odd"):
        detect_particles(frames, diameter=8)
    with pytest.raises(ValueError, match="polarity"):
        detect_particles(frames, diameter=7, polarity="grey")
    with pytest.raises(ValueError, match="NaN"):
        detect_particles(np.full((1, 32, 32), np.nan), diameter=7)
    empty = detect_particles(frames + 1.0, diameter=7)
    assert len(empty["row"]) == 0
