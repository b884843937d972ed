"""End to end on the synthetic movie: train an ensemble, segment, locate, link.

The fast test trains a small ensemble briefly (thresholds below the acceptance
numbers, stated per check); the slow test is the acceptance run of the issue:
a 12-member dilnet ensemble trained on a few frames and scored on others.
Particles whose true centre lies within ``MARGIN`` pixels of the frame edge are
matched but not scored (their visible part is cut by the edge, so their centroid
is not their true centre).
"""

from __future__ import annotations

import numpy as np
import pytest

from pyrolatent.analysis.tracking import link
from pyrolatent.data.synthetic.self_assembly import make_self_assembly_movie
from pyrolatent.segmentation import DeepEnsemble, locate, train_ensemble
from pyrolatent.segmentation.metrics import (
    away_from_border,
    axis_angle_error,
    detection_scores,
    link_recall,
    match_particles,
    pixel_iou,
)

MARGIN = 12  # half a rod length plus one pixel


def _score(movie, ensemble, test_frames):
    mean, var = ensemble.predict(movie.frames[test_frames])
    assert mean.shape == (len(test_frames), 1, *movie.frames.shape[1:])
    iou = pixel_iou(mean[:, 0] > 0.5, movie.masks[test_frames] > 0)
    found = locate(mean[:, 0], uncertainty=var[:, 0], min_area=15, first_frame=test_frames[0])
    sel = np.isin(movie.particles["frame"], test_frames)
    truth = {k: v[sel] for k, v in movie.particles.items()}
    shape = movie.frames.shape[1:]
    found_in, truth_in = (
        away_from_border(found, shape, MARGIN),
        away_from_border(truth, shape, MARGIN),
    )
    f1 = detection_scores(found, truth, max_distance=3, shape=shape, margin=MARGIN)["f1"]
    fi, ti = match_particles(found_in, truth_in, 3)
    orient = np.rad2deg(
        np.median(axis_angle_error(found_in["orientation"][fi], truth_in["axis_angle"][ti]))
    )
    recall = link_recall(link(found, search_radius=21, max_gap=2), truth_in, 3)
    return {"iou": iou, "f1": f1, "orientation": orient, "link_recall": recall, "var": var}


def test_small_ensemble_learns_to_segment_the_movie(tmp_path):
    movie = make_self_assembly_movie(n_frames=12, size=128, n_particles=12, seed=5)
    ensemble = train_ensemble(
        movie.frames[:4],
        movie.masks[:4],
        network_config={"filters": 8},
        n_members=3,
        baseline_steps=150,
        member_steps=20,
        batch_size=4,
        patch_size=64,
        lr=3e-3,
        eval_every=25,
        patience=None,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    assert ensemble.n_members == 3
    reloaded = DeepEnsemble.load(tmp_path / "ensemble.pt")
    frame = movie.frames[6:7]
    np.testing.assert_allclose(reloaded.predict(frame)[0], ensemble.predict(frame)[0], atol=1e-5)
    s = _score(movie, ensemble, list(range(6, 12)))
    # brief training (~150 steps): thresholds below the acceptance numbers
    assert s["iou"] >= 0.8, s["iou"]
    assert s["f1"] >= 0.85, s["f1"]
    assert s["orientation"] <= 5.0, s["orientation"]
    assert s["link_recall"] >= 0.8, s["link_recall"]
    # the members disagree somewhere (different seeds) but agree on most pixels
    assert s["var"].max() > 1e-4 and np.median(s["var"]) < 1e-2


@pytest.mark.slow
def test_acceptance_dilnet_ensemble_on_synthetic_movie(tmp_path):
    movie = make_self_assembly_movie(n_frames=40, size=256, seed=1)
    ensemble = train_ensemble(
        movie.frames[[0, 5, 10, 15]],
        movie.masks[[0, 5, 10, 15]],
        network_config={"filters": 16},
        n_members=12,
        baseline_steps=1500,
        member_steps=60,
        batch_size=8,
        patch_size=64,
        lr=3e-3,
        eval_every=50,
        # no early stop: with patience 6 a noisy validation loss stopped the baseline
        # at step 500 on CPU (IoU 0.877); trained 1500 steps it measured IoU 0.925,
        # F1 1.0, axis error 0.46 deg, link recall 1.0 (CPU, 213 s, 2026-11-22)
        patience=None,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    assert (tmp_path / "ensemble.pt").is_file()
    s = _score(movie, ensemble, list(range(20, 40)))
    assert s["iou"] >= 0.9, s["iou"]
    assert s["f1"] >= 0.95, s["f1"]
    assert s["orientation"] <= 5.0, s["orientation"]
    assert s["link_recall"] >= 0.95, s["link_recall"]
