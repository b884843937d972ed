"""End to end on the synthetic movie: train an ensemble, segment, locate, link.

The fast test trains a small ensemble briefly (thresholds below the acceptance
numbers, stated per check); the slow test is the acceptance run of the issue:
a 12-member dilnet ensemble trained on a few frames and scored on others.
Scores come from :func:`pyrolatent.segmentation.evaluate.score_on_movie`, shared with
``benchmarks/segmentation.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from pyrolatent.data.synthetic.self_assembly import make_self_assembly_movie
from pyrolatent.segmentation import DeepEnsemble, train_ensemble
from pyrolatent.segmentation.evaluate import score_on_movie

ROOT = Path(__file__).resolve().parents[2]


def _recipe() -> dict:
    """The acceptance recipe, from ``benchmarks/segmentation.py`` (its one home)."""
    spec = importlib.util.spec_from_file_location(
        "segmentation_benchmark", ROOT / "benchmarks" / "segmentation.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SYNTHETIC_RECIPE


RECIPE = _recipe()


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
    # the acceptance recipe (benchmarks/segmentation.py), smaller and shorter
    tiny = dict(
        RECIPE, network_config={"filters": 8}, n_members=3, baseline_steps=150, member_steps=20
    )
    tiny.update(batch_size=4, eval_every=25)
    ensemble = train_ensemble(
        movie.frames[:4], movie.masks[:4], **tiny, checkpoint_dir=tmp_path, progress=False
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
    train = [0, 5, 10, 15]
    ensemble = train_ensemble(
        movie.frames[train], movie.masks[train], **RECIPE, checkpoint_dir=tmp_path, progress=False
    )
    assert (tmp_path / "ensemble.pt").is_file()
    s = _score(movie, ensemble, list(range(20, 40)))
    assert s["iou"] >= 0.9, s["iou"]
    assert s["f1"] >= 0.95, s["f1"]
    assert s["orientation"] <= 5.0, s["orientation"]
    assert s["link_recall"] >= 0.95, s["link_recall"]
