"""End to end on the synthetic movie: train an ensemble, segment, locate, link.

The fast test trains a small ensemble briefly (thresholds below the acceptance
numbers, stated per check); the slow test is the acceptance run of the issue:
a 12-member dilnet ensemble trained on a few frames and scored on others.
Scores come from :func:`pyrolatent.segmentation.evaluate.score_on_movie`, shared with
``benchmarks/segmentation.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from pyrolatent.data.synthetic.self_assembly import make_self_assembly_movie
from pyrolatent.segmentation import DeepEnsemble, train_ensemble
from pyrolatent.segmentation.evaluate import score_on_movie


def _score(movie, ensemble, test_frames):
    mean, var = ensemble.predict(movie.frames[test_frames])
    assert mean.shape == (len(test_frames), 1, *movie.frames.shape[1:])
    s = score_on_movie(movie, mean, var, test_frames)
    return {
        "iou": s["iou"],
        "f1": s["f1"],
        "orientation": s["orientation_median_error_deg"],
        "link_recall": s["link_recall"],
        "var": var,
    }


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
