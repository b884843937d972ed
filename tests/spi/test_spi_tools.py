"""Radial normalisation, orientation search and phase retrieval on known answers."""

import math

import pytest
import torch

from pyrolatent.data.synthetic.spi import intensity_volume, shape_density, simulate_patterns
from pyrolatent.primitives.groups import misorientation
from pyrolatent.primitives.so3 import random_rotations
from pyrolatent.spi import (
    OrientationSearch,
    RadialNormalizer,
    aligned_correlation,
    particle_volume,
    phase_retrieval,
    radial_profile,
)


@pytest.fixture(scope="module")
def cube33():
    dens = shape_density("cube", 33)
    return dens, intensity_volume(dens)


def test_radial_profile_of_radial_function():
    c = torch.arange(33.0) - 16
    r = (c[:, None] ** 2 + c[None] ** 2).sqrt()
    img = torch.exp(-r / 4)[None].repeat(3, 1, 1)
    prof = radial_profile(img)
    for k in (0, 1, 5, 10):
        ring = r.round() == k
        assert float(prof[k]) == pytest.approx(float(img[0][ring].mean()), rel=1e-5)
    norm = RadialNormalizer().fit(img)
    flat = norm.transform(img)
    inside = r <= 16
    assert float((flat[:, inside] - 1).abs().max()) < 0.2  # radially flat after dividing
    back = norm.inverse_transform(flat)
    assert torch.allclose(back, img, rtol=1e-5)
    vol = norm.inverse_transform(torch.ones(33, 33, 33), volume=True)
    assert float(vol[16, 16, 20]) == pytest.approx(float(prof[4]), rel=1e-5)


def test_radial_normalizer_masks_and_fills_the_beamstop(cube33):
    _, vol = cube33
    sim = simulate_patterns(vol, 50, photons=1e4, seed=0, beamstop_radius=3)
    norm = RadialNormalizer()
    out = norm.fit_transform(sim["patterns"], mask=sim["mask"])
    assert float(out[:, ~sim["mask"]].abs().sum()) == 0
    assert torch.isfinite(norm.profile_).all() and float(norm.profile_[0]) > 0  # filled bin
    # the normalised dataset mean is ~1 on every valid ring
    ring_mean = out[:, sim["mask"]].mean()
    assert abs(float(ring_mean) - 1) < 0.1
    with pytest.raises(ValueError, match="size"):
        norm.transform(torch.rand(2, 31, 31))
    with pytest.raises(ValueError, match="NaN"):
        norm.transform(torch.full((2, 33, 33), float("nan")))


def test_orientation_search_recovers_cube_orientations(cube33):
    _, vol = cube33
    sim = simulate_patterns(vol, 100, photons=1e4, seed=1)
    search = OrientationSearch(vol, n_orientations=2000, group="Oh", friedel=True, mask=sim["mask"])
    res = search.search(sim["patterns"], progress=False)
    err = torch.rad2deg(misorientation(res["rotation"], sim["rotations"], "Oh", friedel=True))
    assert float(err.median()) < 3.0  # measured 1.3 degrees
    assert bool((res["gain"] > 1).all())
    # a sphere does not fit the cube: lower best CC and lower gain than cube patterns
    sphere = intensity_volume(shape_density("sphere", 33))
    sim_s = simulate_patterns(sphere, 40, photons=1e4, seed=2)
    res_s = search.search(sim_s["patterns"], progress=False)
    assert float(res_s["gain"].median()) < float(res["gain"].median())
    assert float(res_s["cc"].median()) < float(res["cc"].median())
    with pytest.raises(ValueError, match="does not match the reference"):
        search.search(torch.rand(2, 31, 31))
    with pytest.raises(ValueError, match="NaN"):
        search.search(torch.full((2, 33, 33), float("nan")))


def test_phase_retrieval_recovers_3d_and_2d_densities(cube33):
    dens, vol = cube33
    res = phase_retrieval(vol, n_iter=150, n_er=50, seed=0, progress=False)
    assert aligned_correlation(res["density"], dens) > 0.99  # measured 1.000
    assert res["error"] < 1e-3
    # a 2D density (a projection-like image of a rod) from its 2D intensity
    img = shape_density("rod", 33, edge=9).sum(0)
    i2 = torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(img.double()))).abs() ** 2
    res2 = phase_retrieval(i2, n_iter=200, n_er=50, seed=1, progress=False)
    assert aligned_correlation(res2["density"], img) > 0.99
    # a wrong (random) density does not score high: the metric can fail
    assert aligned_correlation(torch.rand(33, 33, 33), dens) < 0.5


def test_aligned_correlation_handles_shift_and_inversion():
    d = shape_density("dimer", 33) + 0.5 * shape_density("rod", 33, edge=6).roll(4, dims=2)
    moved = d.flip(0, 1, 2).roll((3, -2, 5), dims=(0, 1, 2))
    assert aligned_correlation(moved, d) > 0.999
    assert aligned_correlation(d.roll(2, dims=0).transpose(0, 2), d) < 0.95


def test_particle_volume():
    dens = shape_density("cube", 33)
    assert particle_volume(dens, threshold=0.5, relative_to="max") == 11**3
    assert particle_volume(dens, threshold=0.5, relative_to="max", voxel_size=2.0) == 8 * 11**3
    big = shape_density("cube", 33, edge=13)
    assert particle_volume(big, 1e-4) > particle_volume(dens, 1e-4)
    with pytest.raises(ValueError, match="relative_to"):
        particle_volume(dens, relative_to="mean")


def test_bad_inputs(cube33):
    _, vol = cube33
    with pytest.raises(ValueError, match="even"):
        phase_retrieval(torch.rand(32, 32, 32))
    with pytest.raises(ValueError, match="negative"):
        phase_retrieval(-torch.rand(33, 33))
    with pytest.raises(ValueError, match="even"):
        OrientationSearch(torch.rand(32, 32, 32))
    with pytest.raises(ValueError, match="unknown point group"):
        OrientationSearch(vol, n_orientations=100, group="Z9")
    with pytest.raises(ValueError, match="not orthonormal"):
        simulate_patterns(vol, 1, rotations=2 * random_rotations(1))
    assert math.isfinite(float(vol.max()))


def test_quiet_is_a_deprecated_alias_of_progress():
    with pytest.warns(DeprecationWarning, match="progress="):
        res = phase_retrieval(torch.ones(9, 9), n_iter=2, n_er=1, quiet=True)
    assert res["density"].shape == (9, 9)
