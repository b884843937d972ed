"""The independent glyph-card renderer: layout, determinism, distinct suits, pose conventions."""

import math

import numpy as np
import pytest
import torch

from pyrolatent.data.synthetic.cards import SUITS, make_cards, render_cards
from pyrolatent.data.synthetic.glyph_cards import make_glyph_cards, render_glyph_cards
from pyrolatent.primitives import warp_images


def _canonical(image_size=48, **pose):
    n = len(SUITS)
    kw = {"angles": np.zeros(n), "shears": np.zeros(n), "scales": np.ones(n)}
    kw["offsets"] = np.zeros((n, 2))
    for key, value in pose.items():
        kw[key] = np.broadcast_to(np.asarray(value, dtype=float), kw[key].shape).copy()
    return render_glyph_cards(np.arange(n), image_size=image_size, **kw)


def test_same_layout_as_make_cards_and_deterministic():
    kw = dict(angle_range=1.0, shear=0.2, scale_jitter=0.1, max_offset=0.1, noise=0.1, seed=3)
    a, b = make_glyph_cards(10, image_size=32, **kw), make_glyph_cards(10, image_size=32, **kw)
    ours = make_cards(10, image_size=32, **kw)
    assert set(a) == set(ours)
    for key in ("images", "labels", "angles", "shears", "scales", "offsets"):
        np.testing.assert_array_equal(a[key], b[key])
        assert a[key].shape == ours[key].shape and a[key].dtype == ours[key].dtype, key
    c = make_glyph_cards(10, image_size=32, **{**kw, "seed": 4})
    assert not np.array_equal(a["images"], c["images"])
    assert np.bincount(a["labels"], minlength=4).tolist() == [10] * 4
    assert a["suits"] == list(SUITS)
    assert a["images"].min() >= 0 and a["images"].max() <= 1


def test_ground_truth_ranges_and_validation():
    d = make_glyph_cards(
        200, image_size=40, angle_range=0.5, shear=0.23, scale_jitter=0.1, max_offset=0.1, seed=1
    )
    assert np.abs(d["angles"]).max() <= 0.5 and np.abs(d["angles"]).max() > 0.45
    assert d["shears"].min() >= 0 and d["shears"].max() <= 0.23 and d["shears"].max() > 0.2
    assert np.all(np.abs(d["scales"] - 1) <= 0.1 + 1e-6)
    assert np.abs(d["offsets"]).max() <= 4.0 and np.abs(d["offsets"]).max() > 3.5
    for bad in ({"angle_range": -1.0}, {"scale_jitter": 1.0}, {"max_offset": 0.6}):
        with pytest.raises(ValueError):
            make_glyph_cards(2, **bad)
    with pytest.raises(ValueError):
        render_glyph_cards(np.array([4]), [0.0], [0.0], [1.0], [[0.0, 0.0]])


def test_suits_are_distinct_and_the_size_of_ours():
    glyphs = _canonical()
    ours = render_cards(
        torch.arange(4), torch.zeros(4), torch.zeros(4), torch.ones(4), torch.zeros(4, 2)
    ).numpy()
    for i in range(4):
        # similar object size: areas within a factor 1.5 of the analytic suit's
        assert 1 / 1.5 < glyphs[i].sum() / ours[i].sum() < 1.5, SUITS[i]
        for j in range(i + 1, 4):
            diff = np.abs(glyphs[i] - glyphs[j]).sum() / min(glyphs[i].sum(), glyphs[j].sum())
            assert diff > 0.15, (SUITS[i], SUITS[j])


def test_rotation_follows_library_convention():
    """A glyph posed at the recorded angle and offset equals the canonical one warped there."""
    canon = torch.as_tensor(_canonical(image_size=64))
    angle, offset = 0.7, (3.0, -2.0)
    posed = torch.as_tensor(_canonical(image_size=64, angles=angle, offsets=offset))
    a, o = torch.full((4,), angle), torch.tensor([offset]).expand(4, 2)
    warped = warp_images(canon, angle=a, offset=o)
    wrong = warp_images(canon, angle=-a, offset=o)
    err, err_wrong = (posed - warped).abs().mean(), (posed - wrong).abs().mean()
    # only resampling error remains, far below that of the opposite turn
    assert err < 0.2 * err_wrong, (float(err), float(err_wrong))
    # and rotating back by the recorded angle recovers the upright glyph
    back = warp_images(posed, offset=-o)
    back = warp_images(back, angle=-a)
    assert (back - canon).abs().mean() < 0.2 * (canon - canon.flip(-2)).abs().mean()


def test_hearts_turn_counter_clockwise_as_displayed():
    hearts = SUITS.index("hearts")
    up = _canonical()[hearts]
    rows = np.arange(48)[:, None] - 23.5
    # rows grow downwards: the mass sits high (lobes on top, the tip points down)
    assert (up * rows).sum() < 0
    turned = _canonical(angles=math.pi / 2)[hearts]
    cols = np.arange(48)[None, :] - 23.5
    # +90 deg counter-clockwise as displayed: the lobes go left, the tip points right
    assert (turned * cols).sum() < 0.8 * (up * rows).sum()
    assert abs((turned * rows).sum()) < 0.1 * abs((up * rows).sum())


def test_shear_scale_and_offset():
    diamonds = SUITS.index("diamonds")
    base = _canonical(image_size=64)[diamonds]
    big = _canonical(image_size=64, scales=1.2)[diamonds]
    assert big.sum() / base.sum() == pytest.approx(1.44, rel=0.03)
    moved = _canonical(image_size=64, offsets=(4.0, -3.0))[diamonds]
    grid = np.arange(64) - 31.5
    centroid = np.array([(moved.sum(0) * grid).sum(), (moved.sum(1) * grid).sum()]) / moved.sum()
    np.testing.assert_allclose(centroid, [4.0, -3.0], atol=0.1)
    sheared = _canonical(image_size=64, shears=0.3)[diamonds]
    # x' = x + shear * y: the top half (y < 0) moves left
    top = sheared[:32]
    assert (top.sum(0) * grid).sum() / top.sum() < -1.0


def test_noise_and_contamination():
    clean = make_glyph_cards(20, image_size=32, seed=5)["images"]
    noisy = make_glyph_cards(20, image_size=32, noise=0.3, seed=5)["images"]
    background = clean < 0.01
    assert noisy[background].std() > 0.1
    dirty = make_glyph_cards(
        20, image_size=32, contamination_density=0.1, contamination_intensity=0.8, seed=5
    )["images"]
    frac = ((dirty - clean) > 0.5)[background].mean()
    assert 0.07 < frac < 0.13
