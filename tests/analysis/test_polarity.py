"""Pre-aligned crops and directed angles (axis + rVAE residual + polarity)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyrolatent.analysis.polarity import directed_angles, polarity_moment
from pyrolatent.data.crops import align_crops, band_mask, extract_crops
from pyrolatent.data.synthetic.self_assembly import make_self_assembly_movie


def _wrap(a, period=2 * math.pi):
    return np.remainder(a + period / 2, period) - period / 2


def _rod(size, head_right=True):
    """An asymmetric rod along x, heavier at +x (or -x), centred, (size, size)."""
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size] - c
    t = np.clip((xx / 8 + 1) / 2, 0, 1) if head_right else np.clip((-xx / 8 + 1) / 2, 0, 1)
    return ((np.abs(xx) <= 8) & (np.abs(yy) <= 1 + 2 * t)) * (0.5 + t)


@pytest.fixture(scope="module")
def movie():
    return make_self_assembly_movie(
        n_frames=2,
        size=128,
        n_particles=10,
        seed=1,
        head_width_ratio=2.0,
        head_contrast=0.9,
        noise=0.0,
        scan_line_offset=0.0,
    )


def test_align_crops_puts_the_direction_along_x_and_centres_the_particle(movie):
    p, s = movie.particles, 48
    crops, index = extract_crops(movie.clean, p, s)
    centre = s // 2 - (s - 1) / 2  # crop-centre pixel minus the geometric centre
    shifts = np.stack([p["col"] - index["col"] + centre, p["row"] - index["row"] + centre], axis=1)
    al = align_crops(crops, p["angle"], shifts=shifts, window=32)
    assert al.shape == (len(crops), 32, 32) and al.dtype == np.float32
    band = al * (np.abs(np.arange(32) - 15.5) < 4)[:, None]
    yy, xx = np.mgrid[0:32, 0:32] - 15.5
    mass = band.sum((1, 2))
    cy, cx = (band * yy).sum((1, 2)) / mass, (band * xx).sum((1, 2)) / mass
    spread_y = (band * yy**2).sum((1, 2)) / mass
    spread_x = (band * xx**2).sum((1, 2)) / mass
    # the rod lies along x, centred on its row; its heavier head end is at +x
    assert np.median(np.abs(cy)) < 0.2
    assert np.median(spread_x) > 5 * np.median(spread_y)
    assert np.mean(cx > 0.5) > 0.9
    # aligning by the angle + pi puts the head at -x
    flipped = align_crops(crops, p["angle"] + math.pi, shifts=shifts, window=32)
    fb = flipped * (np.abs(np.arange(32) - 15.5) < 4)[:, None]
    assert np.mean((fb * xx).sum((1, 2)) < -0.5 * mass) > 0.9


def test_align_crops_checks_its_inputs():
    crops = np.zeros((2, 16, 16), np.float32)
    with pytest.raises(ValueError, match="angles"):
        align_crops(crops, [0.0])
    with pytest.raises(ValueError, match="window"):
        align_crops(crops, [0.0, 1.0], window=20)
    with pytest.raises(ValueError, match="NaN"):
        align_crops(crops, [0.0, np.nan])
    assert align_crops(np.zeros((0, 16, 16)), [], window=8).shape == (0, 8, 8)


def test_band_mask_keeps_the_band_and_drops_the_sides():
    m = band_mask(32, 4.0)
    assert m.shape == (32, 32)
    assert m[15, 0] > 0.99 and m[0, 10] < 0.01 and m[31, 5] < 0.01
    np.testing.assert_allclose(m, m[::-1])  # symmetric about the centre row
    with pytest.raises(ValueError):
        band_mask(32, 0.0)


def test_polarity_moment_sign_follows_the_heavier_end():
    right, left = _rod(32, True), _rod(32, False)
    mom = polarity_moment(np.stack([right, left, right + 3.0]))
    assert mom[0] > 0 and mom[1] < 0
    np.testing.assert_allclose(mom[2], mom[0], rtol=1e-9)  # a uniform background cancels
    with pytest.raises(ValueError):
        polarity_moment(np.zeros((4, 4)))


def test_directed_angles_combine_axis_residual_and_polarity():
    rng = np.random.default_rng(0)
    n = 200
    truth = rng.uniform(-math.pi, math.pi, n)
    axis = _wrap(truth, math.pi)  # the ellipse axis: the truth modulo pi
    head_right = np.abs(_wrap(truth - axis)) < math.pi / 2
    recon = np.stack([_rod(24, h) for h in head_right])
    offset = 1.3  # the latent's arbitrary global offset
    residual = rng.normal(0, 0.02, n)
    latent = _wrap(offset + residual)
    # a particle whose latent took the flipped pose (+pi) is not flipped twice
    latent[:20] = _wrap(latent[:20] + math.pi)
    out = directed_angles(axis - residual, latent, recon)
    err = np.abs(_wrap(out["angle"] - truth))
    assert err.max() < 0.03
    assert set(np.unique(out["polarity"])) == {-1, 1}
    assert np.all((out["polarity"] > 0) == head_right)
    assert np.all(np.abs(out["residual"]) < math.pi / 2)
    with pytest.raises(ValueError, match="differ"):
        directed_angles(axis[:3], latent, recon)
    with pytest.raises(ValueError, match="reconstructions"):
        directed_angles(axis, latent, recon[:5])
