"""Rotational symmetry order from the images: a contrast, so round particles are not given an n.

Measured on ``make_polygons`` (32 px, default noise, 200-300 images, generator
seeds 0-2): contrast of the true n: triangle 0.228-0.234, square 0.089-0.092,
hexagon with circumradius 12-14 px 0.057-0.058 (threshold 0.03); a hexagon of
circumradius 7-11 px is nearly round at 32 px (contrast 0.017) and is reported
as not resolvable (None), like a 16-gon (|contrast| <= 0.003); an L (no
symmetry) matches no turn (best match 0.42-0.43 < 0.8).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pyrolatent.analysis.symmetry import (
    CONTRAST_THRESHOLD,
    MATCH_THRESHOLD,
    rotational_symmetry,
    turn_match,
)
from pyrolatent.data.synthetic.polygons import make_polygons
from pyrolatent.data.synthetic.shapes import make_rotated_shapes


def _polygons(shape, seed, **kw):
    g = torch.Generator().manual_seed(seed)
    return make_polygons(200, shape=shape, image_size=(32, 32), generator=g, **kw)["images"]


@pytest.mark.parametrize(
    ("shape", "n", "min_contrast", "kw"),
    [
        ("triangle", 3, 0.15, {}),
        ("square", 4, 0.06, {}),
        ("hexagon", 6, 0.045, {"size_range": (12.0, 14.0)}),
    ],
)
def test_n_fold_polygons_report_n(shape, n, min_contrast, kw):
    for seed in (0, 1):
        s = rotational_symmetry(_polygons(shape, seed, **kw))
        assert s["order"] == n, (shape, seed, s)
        assert s["contrast"][n] >= min_contrast, s["contrast"]
        assert s["match"][n] >= MATCH_THRESHOLD


def test_round_particles_are_not_resolvable_and_asymmetric_ones_are_order_1():
    disc = rotational_symmetry(_polygons(16, 0))
    assert disc["order"] is None
    assert max(abs(c) for c in disc["contrast"].values()) < CONTRAST_THRESHOLD / 3
    # a small hexagon at 32 px: nearly a disc; a wrong n would be worse than no answer
    assert rotational_symmetry(_polygons("hexagon", 0))["order"] is None
    ell = make_rotated_shapes(200, shapes=("L",), image_size=32, max_offset=2.0, noise=0.1, seed=0)
    s = rotational_symmetry(ell["images"])
    assert s["order"] == 1 and max(s["match"].values()) < 0.6, s["match"]


def test_turn_match_is_one_for_no_turn_and_symmetric_turns():
    x = _polygons("square", 0, read_noise=0.0, dose=1e6)[:20]
    m = turn_match(x, [0.0, math.pi / 2, math.pi / 4])
    assert m[0] == pytest.approx(1.0, abs=1e-9)
    assert m[1] > 0.97 and m[2] < m[1] - 0.05, m
    with pytest.raises(ValueError):
        turn_match(np.zeros((4, 8)), [0.0])
    with pytest.raises(ValueError):
        rotational_symmetry(x, max_order=1)
