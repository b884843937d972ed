"""Label-free detection on real micrographs: no labels, no training."""

from __future__ import annotations

import numpy as np
import pytest

from pyrolatent.io.movie import read_movie
from pyrolatent.segmentation.detect import detect_particles
from pyrolatent.segmentation.label_free import pseudo_masks
from pyrolatent.workflow.segmenter import PSEUDO_EDGE_FRACTION

# None: one global threshold; PSEUDO_EDGE_FRACTION: the edges `segment` uses without labels
EDGES = pytest.mark.parametrize("local_fraction", [None, PSEUDO_EDGE_FRACTION])

# Counted by eye on fei_haadf_512.npy (contrast-stretched overlay, zoomed): nine bright
# particles, three of them in a touching chain near (340, 45); the dim, larger blobs
# are the support and must not count.
HAADF_BY_EYE = [
    (90, 28), (123, 252), (155, 502), (205, 485), (261, 256),
    (275, 15), (332, 50), (340, 45), (346, 38),
]  # fmt: skip
AU_COUNT_BY_EYE = 50  # as in test_real_segmentation.py, +-3


def _haadf(shared_data):
    return np.load(shared_data / "haadf_nanoparticles" / "fei_haadf_512.npy")[None]


def test_haadf_detector_finds_every_particle_and_nothing_on_the_support(shared_data):
    found = detect_particles(_haadf(shared_data).astype(np.float32), diameter=7)
    assert len(found["row"]) == len(HAADF_BY_EYE), np.c_[found["row"], found["col"]]
    pos = np.c_[found["row"], found["col"]]
    for r, c in HAADF_BY_EYE:
        assert np.hypot(*(pos - (r, c)).T).min() <= 4, (r, c)


@EDGES
def test_haadf_pseudo_masks_split_the_chain(shared_data, local_fraction):
    labels, found = pseudo_masks(
        _haadf(shared_data),
        background_sigma=10,
        watershed="distance",
        min_distance=3,
        local_fraction=local_fraction,
    )
    assert len(found["row"]) == len(HAADF_BY_EYE)
    assert labels.max() >= 1 and (labels > 0).mean() < 0.01


@EDGES
def test_au_pseudo_masks_count(shared_data, local_fraction):
    image = read_movie(shared_data / "au_assemblies_tem" / "exp.png", channel=0)
    labels, found = pseudo_masks(
        image,
        polarity="dark",
        background_sigma=30,
        watershed=True,
        min_distance=3,
        local_fraction=local_fraction,
    )
    assert abs(len(found["row"]) - AU_COUNT_BY_EYE) <= 3, len(found["row"])
    assert len(np.unique(labels[labels > 0])) == len(found["row"])
