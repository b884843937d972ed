"""The playing-card generator: determinism, ground truth, pose conventions, disorder knobs."""

import math

import numpy as np
import pytest
import torch

from pyrolatent.data.synthetic.cards import SUITS, make_cards, paper_split, render_cards
from pyrolatent.primitives import warp_images


def test_deterministic_balanced_and_shaped():
    kw = dict(angle_range=1.0, shear=0.2, scale_jitter=0.1, max_offset=0.1, noise=0.1, seed=3)
    a, b = make_cards(10, image_size=32, **kw), make_cards(10, image_size=32, **kw)
    for key in ("images", "labels", "angles", "shears", "scales", "offsets"):
        np.testing.assert_array_equal(a[key], b[key])
    c = make_cards(10, image_size=32, **{**kw, "seed": 4})
    assert not np.array_equal(a["images"], c["images"])
    assert a["images"].shape == (40, 32, 32) and a["images"].dtype == np.float32
    assert np.bincount(a["labels"], minlength=4).tolist() == [10] * 4
    assert a["suits"] == list(SUITS)
    assert a["images"].min() >= 0 and a["images"].max() <= 1


def test_ground_truth_ranges():
    d = make_cards(
        200, image_size=40, angle_range=0.5, shear=0.23, scale_jitter=0.1, max_offset=0.1, seed=1
    )
    assert np.abs(d["angles"]).max() <= 0.5 and np.abs(d["angles"]).max() > 0.45
    assert d["shears"].min() >= 0 and d["shears"].max() <= 0.23 and d["shears"].max() > 0.2
    assert np.all(np.abs(d["scales"] - 1) <= 0.1)
    assert np.abs(d["offsets"]).max() <= 4.0 and np.abs(d["offsets"]).max() > 3.5


def test_pose_follows_library_convention():
    """A posed card equals the canonical card moved by warp_images with the same pose."""
    labels = torch.arange(4)
    zero = torch.zeros(4)
    canon = render_cards(labels, zero, zero, torch.ones(4), torch.zeros(4, 2), image_size=64)
    angle = torch.full((4,), 0.7)
    offset = torch.tensor([[3.0, -2.0]]).expand(4, 2)
    posed = render_cards(labels, angle, zero, torch.ones(4), offset, image_size=64)
    warped = warp_images(canon, angle=angle, offset=offset)
    wrong = warp_images(canon, angle=-angle, offset=offset)
    err, err_wrong = (posed - warped).abs().mean(), (posed - wrong).abs().mean()
    # only bilinear resampling error remains, 10x below that of the opposite turn
    assert err < 0.1 * err_wrong


def test_suits_are_distinct():
    d = make_cards(1, image_size=48, seed=0)
    imgs = d["images"][np.argsort(d["labels"])]
    for i in range(4):
        for j in range(i + 1, 4):
            # differing area at least 15% of the smaller suit's area
            diff = np.abs(imgs[i] - imgs[j]).sum() / min(imgs[i].sum(), imgs[j].sum())
            assert diff > 0.15, (SUITS[i], SUITS[j])


def test_noise_and_contamination():
    clean = make_cards(20, image_size=32, seed=5)["images"]
    noisy = make_cards(20, image_size=32, noise=0.3, seed=5)["images"]
    background = clean < 0.01
    assert noisy[background].std() > 0.1
    dirty = make_cards(
        20, image_size=32, contamination_density=0.1, contamination_intensity=0.8, seed=5
    )["images"]
    frac = ((dirty - clean) > 0.5)[background].mean()
    assert 0.07 < frac < 0.13


def test_paper_split():
    sp = paper_split(5, 10, 7, image_size=32)
    assert sp["labelled"]["images"].shape == (20, 32, 32)
    assert sp["unlabelled"]["images"].shape == (40, 32, 32)
    assert sp["test"]["images"].shape == (28, 32, 32)
    assert np.abs(sp["labelled"]["angles"]).max() <= math.radians(4)
    assert np.all(sp["labelled"]["offsets"] == 0)
    assert np.abs(sp["unlabelled"]["angles"]).max() > math.radians(30)


@pytest.mark.parametrize(
    "kw",
    [
        {"n_per_class": 0},
        {"angle_range": -1.0},
        {"shear": float("nan")},
        {"scale_jitter": 1.0},
        {"max_offset": 0.7},
        {"contamination_density": 1.5},
        {"image_size": 4},
    ],
)
def test_bad_input(kw):
    args = {"n_per_class": 2, **kw}
    with pytest.raises(ValueError):
        make_cards(**args)


def test_shape_jitter_varies_shapes_not_poses():
    kw = dict(image_size=32, angle_range=1.0, shear=0.2, max_offset=0.1, seed=2)
    plain, zero = make_cards(8, **kw), make_cards(8, shape_jitter=0.0, **kw)
    np.testing.assert_array_equal(plain["images"], zero["images"])
    jit = make_cards(8, shape_jitter=0.3, **kw)
    for key in ("labels", "angles", "shears", "offsets"):
        np.testing.assert_array_equal(plain[key], jit[key])
    diff = np.abs(jit["images"] - plain["images"]).sum((1, 2)) / plain["images"].sum((1, 2))
    assert np.all(diff > 0.02) and np.median(diff) > 0.1
    # unit factors draw the canonical suits
    n = 8
    labels, angles = torch.arange(4).repeat(2), torch.linspace(-1, 1, n)
    args = (labels, angles, torch.full((n,), 0.1), torch.ones(n), torch.zeros(n, 2))
    ones = render_cards(*args, shape_factors=torch.ones(n, 18))
    torch.testing.assert_close(ones, render_cards(*args), atol=1e-5, rtol=0)
    with pytest.raises(ValueError):
        make_cards(2, shape_jitter=1.0)
