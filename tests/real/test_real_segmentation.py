"""Segmentation, localisation and linking on real images from ``../shared/data``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from pyrolatent.analysis.tracking import link, mean_squared_displacement, track_statistics
from pyrolatent.io.movie import read_movie
from pyrolatent.segmentation import locate
from pyrolatent.segmentation.filters import bandpass_map, otsu_threshold

ROOT = Path(__file__).resolve().parents[2]


def _segmentation_benchmark():
    """``benchmarks/segmentation.py`` as a module (it holds the c2c12 recipe)."""
    spec = importlib.util.spec_from_file_location(
        "segmentation_benchmark", ROOT / "benchmarks" / "segmentation.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Counted by eye on exp.png (overlay saved and inspected): 50 particles, +-2 for a
# faint one at (row 127, col 295) and a chain near (row 40, col 150) of 2 or 3.
AU_COUNT_BY_EYE = 50


def test_au_watershed_separates_touching_particles(shared_data):
    image = read_movie(shared_data / "au_assemblies_tem" / "exp.png", channel=0)
    assert image.shape == (1, 300, 300)
    feature = bandpass_map(image, noise_sigma=1.0, background_sigma=30, dark_particles=True)
    threshold = otsu_threshold(feature)
    plain = locate(feature, threshold=threshold, min_area=15)
    split = locate(feature, threshold=threshold, min_area=15, watershed=True, min_distance=3)
    n_plain, n_split = len(plain["row"]), len(split["row"])
    assert n_split >= n_plain + 3, (n_plain, n_split)
    assert abs(n_split - AU_COUNT_BY_EYE) <= 3, n_split
    # the dimer near (row 70, col 150-163) becomes two particles
    near = (np.abs(split["row"] - 70) < 6) & (split["col"] > 144) & (split["col"] < 168)
    assert near.sum() == 2
    plain_near = (np.abs(plain["row"] - 70) < 6) & (plain["col"] > 144) & (plain["col"] < 168)
    assert plain_near.sum() == 1


def test_bulk_water_localisation_and_linking(shared_data):
    movie = read_movie(shared_data / "bulk_water" / "bulk_water_000-029.npy")[:6]
    feature = bandpass_map(movie, noise_sigma=1.0, background_sigma=6, dark_particles=True)
    found = locate(feature, threshold=otsu_threshold(feature), min_area=8, border_margin=3)
    per_frame = np.bincount(found["frame"], minlength=6)
    # hundreds of spheres per frame, the same number in every frame to within 5%
    assert 400 <= per_frame.mean() <= 700, per_frame
    assert per_frame.std() / per_frame.mean() < 0.05
    tracks = link(found, search_radius=5, max_gap=2)
    stats = track_statistics(tracks)
    linked = np.isin(tracks["track"], stats["track"][stats["length"] > 1]).mean()
    assert linked > 0.9, linked
    # 1 um spheres at 24 fps, 2.85 px/um: D ~ 0.44 um^2/s, step ~ 0.2 um ~ 0.6 px
    mean_step = np.nanmean(stats["mean_step"])
    assert 0.2 < mean_step < 1.5, mean_step
    msd = mean_squared_displacement(tracks, max_lag=4)["msd"]
    assert 2.5 < msd[3] / msd[0] < 5.5, msd  # close to linear: free diffusion


@pytest.mark.slow
def test_c2c12_leave_one_frame_out_iou(shared_data):
    """Issue 15's restated C2C12 criterion: leave-one-frame-out IoU over frames 0-6 >= 0.72.

    Frames 7-9 are labelled in a tighter style than 0-6 (the predicted foreground is
    1.2-1.5 times the labelled one there; benchmarks/c2c12_label_ceiling.py measures
    that even a model fitted to frames 7-9 reaches only 0.687 on them), so they are
    reported by ``benchmarks/segmentation.py`` (``iou_c2c12``: 0.588 trained on all of
    0-6), not asserted. Seven trainings of the recipe in ``benchmarks/segmentation.py``:
    about 80 minutes on one idle CPU thread. Measured (AMD EPYC, one thread per fold):
    0.747 pooled, per held-out frame 0.744, 0.757, 0.790, 0.717, 0.754, 0.756, 0.725.
    """
    data = np.load(shared_data / "c2c12_cells" / "data_small.npz")
    images, labels = data["images"].astype(np.float32), data["labels"] > 0
    result = _segmentation_benchmark().c2c12_lofo(images, labels)
    per_frame = [round(v, 3) for v in result["iou_c2c12_lofo_per_frame"]]
    assert result["iou_c2c12_lofo_0_6"] >= 0.72, (result["iou_c2c12_lofo_0_6"], per_frame)
